# SPDX-License-Identifier: Apache-2.0
# Third-party libraries, all from Debian packages (scripts/deps.sh), found
# through pkg-config as imported targets PkgConfig::<NAME>.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(UV        REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(ROCKSDB   REQUIRED IMPORTED_TARGET rocksdb)
pkg_check_modules(NANOMSG   REQUIRED IMPORTED_TARGET nanomsg)
pkg_check_modules(YAML      REQUIRED IMPORTED_TARGET yaml-0.1)
pkg_check_modules(OPENSSL   REQUIRED IMPORTED_TARGET openssl)
pkg_check_modules(ZLIB      REQUIRED IMPORTED_TARGET zlib)
if(BUILD_TESTS)
  pkg_check_modules(CMOCKA  REQUIRED IMPORTED_TARGET cmocka)
endif()
find_program(PROTOC_C protoc-c REQUIRED)
