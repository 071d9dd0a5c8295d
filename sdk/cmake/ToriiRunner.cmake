# torii_add_runner(<name> SOURCES <src>... [VERSION_SCRIPT <file>])
#
# Builds a Torii runner plugin correctly:
#   - a MODULE library named libtorii_<name>.so (what the server looks for),
#   - C++17, hidden visibility, no undefined symbols left for the host,
#   - a linker version script exporting only the torii_runner_* entry points,
#   - TORII_RUNNER_SOURCE_REVISION set from the runner's git revision,
#   - linked against the header-only SDK only (never against the server).
# The target is called <name>; link extra libraries with
# target_link_libraries(<name> PRIVATE ...).
include_guard(GLOBAL)



function(torii_add_runner name)
  cmake_parse_arguments(ARG "" "VERSION_SCRIPT;OUTPUT_DIRECTORY" "SOURCES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "torii_add_runner(${name}): SOURCES is required")
  endif()
  if(NOT ARG_VERSION_SCRIPT)
    set(ARG_VERSION_SCRIPT "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/runner.map")
  endif()

  # The revision of the runner's own sources, for provenance.
  set(_rev "unknown")
  find_package(Git QUIET)
  if(GIT_FOUND)
    execute_process(
      COMMAND "${GIT_EXECUTABLE}" describe --always --dirty --abbrev=12
      WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
      OUTPUT_VARIABLE _git_rev OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE _git_rc ERROR_QUIET)
    if(_git_rc EQUAL 0 AND _git_rev)
      set(_rev "${_git_rev}")
    endif()
  endif()

  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE torii::sdk)
  target_compile_features(${name} PRIVATE cxx_std_17)
  target_compile_definitions(${name} PRIVATE
    TORII_RUNNER_SOURCE_REVISION="${_rev}")
  set_target_properties(${name} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME "torii_${name}"
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON
    LINK_DEPENDS "${ARG_VERSION_SCRIPT}")
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES
      LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIRECTORY}")
  endif()
  target_link_options(${name} PRIVATE
    "LINKER:--version-script=${ARG_VERSION_SCRIPT}"
    "LINKER:--no-undefined"
    "LINKER:-z,defs")
endfunction()
