# SPDX-License-Identifier: Apache-2.0
# fl_warnings: the project's warning set, an INTERFACE target every first-party
# target links. Generated protobuf-c code does not link it (its output has
# unused-parameter and cast-qual warnings we cannot fix).
add_library(fl_warnings INTERFACE)
target_compile_options(fl_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wcast-qual -Wundef -Wformat=2 -Wvla -Wnull-dereference
  # Justified exceptions (docs/build.md):
  #  -Wno-missing-field-initializers: designated initialisers that leave
  #   fields zero are the idiom STYLE.md asks for.
  -Wno-missing-field-initializers)
if(WERROR)
  target_compile_options(fl_warnings INTERFACE -Werror)
endif()

# Never -ffast-math anywhere: aggregation must be bit-identical on every peer.
add_compile_options(-fno-fast-math -ffp-contract=off -fno-strict-aliasing)

if(SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(TSAN)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()
if(FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "FUZZ=ON needs clang: cmake -DCMAKE_C_COMPILER=clang -DFUZZ=ON")
  endif()
  # Instrument everything for coverage feedback; the fuzzer main is linked
  # only into the fuzz targets (tests/fuzz).
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
                      -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(COVERAGE)
  add_compile_options(--coverage)
  add_link_options(--coverage)
endif()
