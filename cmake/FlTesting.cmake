# SPDX-License-Identifier: Apache-2.0
# fl_unit_test(NAME <name> SOURCES <files...> LIBS <targets...> [LABELS ...] [TIMEOUT s])
# One cmocka binary per module, one ctest entry each, label `unit` (STYLE.md 8).
function(fl_unit_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT BUILD_TESTS)
    return()
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} PkgConfig::CMOCKA fl_warnings)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set(labels unit ${T_LABELS})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${labels}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "FL_SOURCE_DIR=${PROJECT_SOURCE_DIR};FL_BINARY_DIR=${PROJECT_BINARY_DIR};FL_SHARED_DIR=${PROJECT_SOURCE_DIR}/../shared")
endfunction()
