# libillada.so: the C API of include/illada/illada.h (src/capi/) over the library's modules,
# and its tests. Included from CMakeLists.txt when ILLADA_SHARED is on.
enable_language(C)

# The version lives once, in the header.
file(STRINGS ${PROJECT_SOURCE_DIR}/include/illada/illada.h _illada_version_lines
     REGEX "^#define ILLADA_(VERSION_(MAJOR|MINOR|PATCH)|ABI_VERSION) [0-9]+$")
foreach(_line ${_illada_version_lines})
  string(REGEX REPLACE "^#define (ILLADA_[A-Z_]+) ([0-9]+)$" "\\1;\\2" _kv "${_line}")
  list(GET _kv 0 _k)
  list(GET _kv 1 _v)
  set(${_k} ${_v})
endforeach()
set(ILLADA_VERSION "${ILLADA_VERSION_MAJOR}.${ILLADA_VERSION_MINOR}.${ILLADA_VERSION_PATCH}")

file(GLOB ILLADA_CAPI_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/capi/*.cc)
add_library(illada_shared SHARED ${ILLADA_CAPI_SOURCES})
add_library(illada::illada ALIAS illada_shared)
set_target_properties(illada_shared PROPERTIES
  OUTPUT_NAME illada EXPORT_NAME illada
  VERSION ${ILLADA_VERSION} SOVERSION ${ILLADA_ABI_VERSION})
target_include_directories(illada_shared
  PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>
  PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_compile_definitions(illada_shared PRIVATE ILLADA_BUILDING_LIBRARY)
target_link_libraries(illada_shared PRIVATE illada_sample illada_score illada_eval illada_tokenizer
                      OpenMP::OpenMP_CXX)
# Only the functions marked ILLADA_API are exported: the static modules' symbols (and those of
# the C++ libraries they carry) stay inside, so a program may link its own copies.
target_link_options(illada_shared PRIVATE -Wl,--exclude-libs,ALL -Wl,--no-undefined)

if(ILLADA_BUILD_TESTS)
  # Unit tests of the C API in the build tree (errors, accessors, every entry point).
  file(GLOB ILLADA_CAPI_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/capi/*_test.cc)
  add_executable(capi_tests ${ILLADA_CAPI_TESTS})
  target_link_libraries(capi_tests PRIVATE illada_shared GTest::gtest GTest::gtest_main)
  target_compile_definitions(capi_tests PRIVATE ILLADA_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                                ILLADA_CLI="$<TARGET_FILE:illada>")
  add_dependencies(capi_tests illada)  # illada_quantize is compared with `illada quantize`
  gtest_discover_tests(capi_tests DISCOVERY_TIMEOUT 60 TEST_PREFIX "capi."
    PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2;OMP_WAIT_POLICY=passive")

  # Two threads generating on one loaded model give the sequential results (plain C).
  find_package(Threads REQUIRED)
  add_executable(capi_two_threads ${PROJECT_SOURCE_DIR}/tests/capi/two_threads.c)
  target_link_libraries(capi_two_threads PRIVATE illada_shared Threads::Threads)
  add_test(NAME capi.two_threads
           COMMAND capi_two_threads ${PROJECT_SOURCE_DIR}/tests/fixtures/tiny_gqa)
  set_tests_properties(capi.two_threads PROPERTIES ENVIRONMENT "OMP_WAIT_POLICY=passive")

  # The installed tree: `cmake --install` into a fresh prefix, then programs built from
  # outside this tree against it (CMake package, pkg-config) and the Python package.
  find_program(ILLADA_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT ILLADA_PYTHON)
    find_program(ILLADA_PYTHON NAMES python3 REQUIRED)
  endif()
  set(_prefix ${PROJECT_BINARY_DIR}/capi_test_prefix)
  add_test(NAME capi.install
           COMMAND bash ${PROJECT_SOURCE_DIR}/tests/capi/install.sh ${PROJECT_BINARY_DIR} ${_prefix})
  set_tests_properties(capi.install PROPERTIES FIXTURES_SETUP illada_installed)
  foreach(kind cmake pkgconfig)
    add_test(NAME capi.consumer_${kind}
             COMMAND bash ${PROJECT_SOURCE_DIR}/tests/capi/consumer.sh ${kind} ${_prefix}
                     ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/capi_consumer_${kind})
    set_tests_properties(capi.consumer_${kind} PROPERTIES FIXTURES_REQUIRED illada_installed
                         ENVIRONMENT "OMP_WAIT_POLICY=passive")
  endforeach()
  # The Python tests, through the installed package: once as installed (numpy present), once
  # with numpy hidden (nested lists instead of arrays).
  file(GLOB ILLADA_PYTHON_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/python/test_*.py)
  foreach(t ${ILLADA_PYTHON_TESTS})
    get_filename_component(n ${t} NAME_WE)
    add_test(NAME python.${n}
             COMMAND ${ILLADA_PYTHON} -m unittest -v ${n}
             WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/tests/python)
    set_tests_properties(python.${n} PROPERTIES FIXTURES_REQUIRED illada_installed
      ENVIRONMENT "PYTHONPATH=${_prefix}/python;ILLADA_TEST_PREFIX=${_prefix};ILLADA_SOURCE_DIR=${PROJECT_SOURCE_DIR};ILLADA_TEST_NUMPY=1;OMP_WAIT_POLICY=passive;OMP_NUM_THREADS=2")
  endforeach()
  add_test(NAME python.test_model_without_numpy
           COMMAND ${ILLADA_PYTHON} -m unittest -v test_model
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/tests/python)
  set_tests_properties(python.test_model_without_numpy PROPERTIES FIXTURES_REQUIRED illada_installed
    ENVIRONMENT "PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/python/no_numpy:${_prefix}/python;ILLADA_TEST_PREFIX=${_prefix};ILLADA_SOURCE_DIR=${PROJECT_SOURCE_DIR};ILLADA_TEST_NUMPY=0;OMP_WAIT_POLICY=passive;OMP_NUM_THREADS=2")
endif()
