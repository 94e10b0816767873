# Sanitizer builds: SF_ASAN (AddressSanitizer + UndefinedBehaviorSanitizer) and SF_TSAN
# (ThreadSanitizer). C and C++ code is instrumented; CUDA device code is not (configure
# sanitizer builds with -DSF_WITH_CUDA=OFF, as `make test-asan` / `make test-tsan` do).
#
# Sets SF_SANITIZER_TEST_ENV: the environment entries sf_test gives every test, so that a
# report fails the test (UBSan stops at the first finding; TSan exits with status 66).
#
# SF_TSAN also builds the abseil libraries the project links again with TSan (see
# cmake/build-tsan-abseil.sh; cached under <build>/tsan-abseil) and gives every target an
# RPATH to them: Debian's abseil is not instrumented, and TSan cannot see absl::Mutex in it.

set(SF_SANITIZER_TEST_ENV "")
set(SF_SANITIZER_DIR ${CMAKE_CURRENT_LIST_DIR}/sanitizers)

function(_sf_sanitize)
  foreach(flag IN LISTS ARGN)
    add_compile_options($<$<COMPILE_LANGUAGE:C>:${flag}> $<$<COMPILE_LANGUAGE:CXX>:${flag}>)
  endforeach()
endfunction()

if(SF_ASAN)
  _sf_sanitize(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
  set(SF_SANITIZER_TEST_ENV
      "ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:strict_init_order=1"
      "UBSAN_OPTIONS=print_stacktrace=1")
  message(STATUS "sparse_frontier: ASan + UBSan build (a finding fails the test)")
endif()

if(SF_TSAN)
  _sf_sanitize(-fsanitize=thread)
  add_link_options(-fsanitize=thread)
  # Every C++ file of a target that uses protobuf sees its map fields laid out as Debian's
  # uninstrumented libprotobuf has them (protobuf_tsan_abi.h says why).
  find_package(Protobuf REQUIRED)
  set_property(TARGET protobuf::libprotobuf APPEND PROPERTY INTERFACE_COMPILE_OPTIONS
    $<$<COMPILE_LANGUAGE:CXX>:-include${SF_SANITIZER_DIR}/protobuf_tsan_abi.h>)
  set(_jobs $ENV{CMAKE_BUILD_PARALLEL_LEVEL})
  if(NOT _jobs)
    cmake_host_system_information(RESULT _jobs QUERY NUMBER_OF_LOGICAL_CORES)
  endif()
  message(STATUS "sparse_frontier: TSan build: abseil with TSan in ${CMAKE_BINARY_DIR}/tsan-abseil "
                 "(built on the first configure, a few minutes)")
  execute_process(
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/build-tsan-abseil.sh ${CMAKE_BINARY_DIR}/tsan-abseil
            ${_jobs}
    OUTPUT_VARIABLE _out ERROR_VARIABLE _err RESULT_VARIABLE _rc
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "SF_TSAN needs abseil built with TSan, and building it failed:\n${_err}")
  endif()
  string(REGEX REPLACE ".*\n" "" SF_TSAN_ABSEIL_LIBDIR "${_out}")
  # DT_RPATH (not RUNPATH) also applies to the libraries gRPC loads, so the whole process
  # uses the instrumented abseil.
  add_link_options(-Wl,--disable-new-dtags -Wl,-rpath,${SF_TSAN_ABSEIL_LIBDIR})
  set(SF_SANITIZER_TEST_ENV
      "TSAN_OPTIONS=suppressions=${SF_SANITIZER_DIR}/tsan.supp:second_deadlock_stack=1")
  message(STATUS "sparse_frontier: TSan build (a report fails the test)")
endif()
