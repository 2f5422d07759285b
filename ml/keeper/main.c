/* SPDX-License-Identifier: Apache-2.0
 *
 * main.c: fedledger-keeper, the FL round keeper (ml/keeper/keeper.h,
 * docs/edge.md).
 */
#include "ml/keeper/keeper.h"

int main(int argc, char **argv) { return fl_keeper_main(argc, argv); }
