/* SPDX-License-Identifier: Apache-2.0
 *
 * model.h: the models of ml/ and their local training.
 *
 * Three kinds, all with parameters in one fl_ml_tensors_t so that the same
 * aggregation rules, attacks and blob format apply to each:
 *   - FL_ML_LOGREG: logistic regression; one sigmoid output for 2 classes
 *     (tensors l0.w [d,1], l0.b [1]), softmax over K outputs otherwise;
 *   - FL_ML_MLP: fully connected ReLU layers (hidden[]), softmax output;
 *     tensors l<i>.w [in,out] and l<i>.b [out];
 *   - FL_ML_PROTO: a GLVQ prototype model (protos_per_class prototypes per
 *     class, tensor protos [K*ppc, d]); prediction is the class of the
 *     nearest prototype, training minimises the GLVQ cost
 *     mu = (d+ - d-) / (d+ + d-) with SGD (batch 1 gives the incremental,
 *     sample-by-sample ILVQ-style learner);
 *   - FL_ML_AE: an autoencoder, a dense ReLU net (hidden[]) whose linear
 *     output has n_in units and is trained to reproduce its input (loss
 *     (1/2d) sum_j (out_j - x_j)^2 per row; labels only select class
 *     weights). It classifies nothing: fl_ml_model_anomaly gives each row's
 *     reconstruction error, the novelty score of a detector trained on
 *     normal rows only. fl_ml_model_predict / _predict_proba are for the
 *     classifiers and must not be called on it.
 *
 * Training is plain C loops, single-threaded, seeded: the same model, data,
 * options and seed give the same bytes. A model is not thread-safe (it keeps
 * a scratch workspace); use one model per thread.
 */
#ifndef FL_ML_MODEL_H
#define FL_ML_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/base/status.h"
#include "ml/dataset.h"
#include "ml/tensor.h"

#define FL_ML_MAX_HIDDEN 8

typedef enum fl_ml_model_kind_e {
  FL_ML_LOGREG = 0,
  FL_ML_MLP = 1,
  FL_ML_PROTO = 2,
  FL_ML_AE = 3,
} fl_ml_model_kind_t;

typedef struct fl_ml_model_spec_s {
  fl_ml_model_kind_t kind;
  uint32_t n_in;      /* features */
  uint32_t n_classes; /* >= 2 */
  uint32_t n_hidden;  /* MLP: hidden layers, 1..FL_ML_MAX_HIDDEN */
  uint32_t hidden[FL_ML_MAX_HIDDEN];
  uint32_t protos_per_class; /* PROTO: >= 1 */
} fl_ml_model_spec_t;

typedef struct fl_ml_model_s fl_ml_model_t;

/** Creates a model with seeded initial weights (He-uniform for ReLU layers,
 *  Glorot-uniform for the output layer, zero biases; prototypes uniform in
 *  [0.25, 0.75)). Returns owned *out (fl_ml_model_free), or FL_EINVAL for a
 *  bad spec, FL_ETOOBIG beyond the blob limits. */
fl_status_t fl_ml_model_new(const fl_ml_model_spec_t *spec, uint64_t seed,
                            fl_ml_model_t **out);
/** Frees m. NULL-safe. */
void fl_ml_model_free(fl_ml_model_t *m);
/** The spec (view valid while m lives). */
const fl_ml_model_spec_t *fl_ml_model_spec(const fl_ml_model_t *m);
/** The parameters (view owned by m). Callers may change the values, never
 *  the layout. */
fl_ml_tensors_t *fl_ml_model_params(fl_ml_model_t *m);
/** The parameters, read-only (view owned by m). */
const fl_ml_tensors_t *fl_ml_model_cparams(const fl_ml_model_t *m);
/** Copies p's values into m. FL_EINVAL when the layout differs. */
fl_status_t fl_ml_model_set_params(fl_ml_model_t *m, const fl_ml_tensors_t *p);

/** Weighted mean loss of n rows (x: n * n_in row-major, y: n labels) and,
 *  when grad is not NULL, its gradient (n_params floats, overwritten).
 *  class_weight (n_classes entries) may be NULL for all ones. No
 *  regularisation. Returns the loss (NaN if n is 0). */
double fl_ml_model_loss_grad(fl_ml_model_t *m, const float *x, const int32_t *y,
                             size_t n, const float *class_weight,
                             float *grad /* out, may be NULL */);
/** Predicted class of each of n rows into pred. */
void fl_ml_model_predict(fl_ml_model_t *m, const float *x, size_t n,
                         int32_t *pred /* out */);
/** Class probabilities of n rows into proba (n * n_classes, row-major):
 *  softmax of the logits for dense nets (sigmoid for binary logistic
 *  regression); for PROTO, a softmax of minus the nearest-prototype
 *  distance of each class. Rows sum to 1. Used to choose an operating
 *  threshold other than argmax. */
void fl_ml_model_predict_proba(fl_ml_model_t *m, const float *x, size_t n,
                               float *proba /* out */);
/** AE only: reconstruction error (mean squared error over the n_in
 *  features) of each of n rows into score. FL_EINVAL for another kind. */
fl_status_t fl_ml_model_anomaly(fl_ml_model_t *m, const float *x, size_t n,
                                float *score /* out */);
/** PROTO only: sets each class's prototypes to rows of that class drawn
 *  (seeded) from ds rows idx[0..n) (the usual ILVQ seeding). Classes with no
 *  rows keep their prototypes. FL_EINVAL for another kind. */
fl_status_t fl_ml_model_proto_init(fl_ml_model_t *m, const fl_ml_dataset_t *ds,
                                   const uint32_t *idx, size_t n, uint64_t seed);

typedef enum fl_ml_opt_e {
  FL_ML_OPT_SGD = 0,  /* SGD with (optional) momentum */
  FL_ML_OPT_ADAM = 1, /* Adam, beta1 0.9, beta2 0.999, eps 1e-8 */
} fl_ml_opt_t;

typedef struct fl_ml_train_opts_s {
  fl_ml_opt_t opt;
  float lr;
  float momentum;   /* SGD only */
  float l2;         /* weight decay on weights (not biases) */
  float prox_mu;    /* FedProx term mu/2 |w - w_start|^2; 0 = off */
  float dropout;    /* MLP: dropout rate on hidden activations; 0 = off */
  uint32_t batch;   /* >= 1 */
  uint32_t epochs;  /* >= 1 */
  const float *class_weight; /* n_classes entries or NULL */
  uint64_t seed;    /* shuffling and dropout */
} fl_ml_train_opts_t;

/** Trains m on rows idx[0..n) of ds (optimizer state starts fresh each
 *  call, as an FL client does each round). *mean_loss (may be NULL) gets the
 *  mean batch loss of the last epoch. FL_EINVAL for bad options, a dataset
 *  of another width, or n == 0. */
fl_status_t fl_ml_train(fl_ml_model_t *m, const fl_ml_dataset_t *ds,
                        const uint32_t *idx, size_t n,
                        const fl_ml_train_opts_t *opts, double *mean_loss);

#endif /* FL_ML_MODEL_H */
