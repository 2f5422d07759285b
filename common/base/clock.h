/* SPDX-License-Identifier: Apache-2.0
 * clock.h: monotonic and wall clocks. */
#ifndef FL_BASE_CLOCK_H
#define FL_BASE_CLOCK_H

#include <stdint.h>

/** Monotonic nanoseconds (CLOCK_MONOTONIC); for intervals only. */
uint64_t fl_mono_ns(void);
/** Wall-clock milliseconds since the Unix epoch (for timestamps in data). */
uint64_t fl_wall_ms(void);

#endif /* FL_BASE_CLOCK_H */
