# Configure, build and run the unit tests of a nested copy of latent with AddressSanitizer and
# UBSan (the ctest entry sanitizers.address_undefined runs this with cmake -P). Unlike
# `ctest --build-and-test`, which builds serially, this builds and tests on every core. -g1
# (line tables only) keeps file:line in sanitizer reports at 70% of -g's compile time and memory
# (estimators_test: 158 s and 2.6 GB against 225 s and 3.7 GB).
#
# Inputs (-D): SOURCE_DIR, BINARY_DIR, GENERATOR, JOBS.
foreach(var SOURCE_DIR BINARY_DIR GENERATOR JOBS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "sanitized_build.cmake: ${var} is not set")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    list(JOIN ARGV " " command)
    message(FATAL_ERROR "sanitized build: '${command}' failed (${rc})")
  endif()
endfunction()

run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR} -G ${GENERATOR}
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS=-O1 -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DLATENT_SANITIZE=ON -DLATENT_SANITIZER_TEST=OFF
    -DLATENT_BUILD_EXAMPLES=OFF -DLATENT_BUILD_BENCHMARKS=OFF -DLATENT_BUILD_TOOLS=OFF -DLATENT_INSTALL=OFF)
run(${CMAKE_COMMAND} --build ${BINARY_DIR} --parallel ${JOBS})
run(${CMAKE_CTEST_COMMAND} --test-dir ${BINARY_DIR} -L unit --output-on-failure -j ${JOBS})
