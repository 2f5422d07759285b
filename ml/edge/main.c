/* SPDX-License-Identifier: Apache-2.0
 *
 * main.c: fedledger-edge, the FL edge client (ml/edge/edge.h, docs/edge.md).
 */
#include "ml/edge/edge.h"

int main(int argc, char **argv) { return fl_edge_main(argc, argv); }
