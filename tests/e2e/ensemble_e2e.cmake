# Ensembles end to end (tests/e2e/ensemble_e2e_test.cc), included from
# tests/e2e/CMakeLists.txt. The cases with Python models are compiled when the
# Python runner is built.
torii_add_test(torii_ensemble_e2e_tests
  SOURCES ensemble_e2e_test.cc
  LIBS torii_test_util torii::proto gRPC::grpc++
  LABELS e2e)
target_compile_definitions(torii_ensemble_e2e_tests PRIVATE
  TORII_EXAMPLE_REPOSITORY="${PROJECT_SOURCE_DIR}/examples/model_repository"
  TORII_TRITON_ENSEMBLE_DIR="${CMAKE_CURRENT_SOURCE_DIR}/triton_ensemble"
  TORII_FAULT_RUNNER="$<TARGET_FILE:fault>")
add_dependencies(torii_ensemble_e2e_tests fault identity add_sub)
if(TORII_WITH_PYTHON)
  target_compile_definitions(torii_ensemble_e2e_tests PRIVATE TORII_TEST_PYTHON_RUNNER)
  add_dependencies(torii_ensemble_e2e_tests python torii-runner-host)
endif()
