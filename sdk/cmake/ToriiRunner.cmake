# torii_add_runner(<name> SOURCES <src>...
#                  [OUTPUT_DIRECTORY <dir>] [VERSION_SCRIPT <file>]
#                  [REVISION <text>])
#
# Builds a Torii runner plugin correctly:
#   - a MODULE library named libtorii_<name>.so (what the server looks for),
#   - C++17, hidden visibility, no undefined symbols left for the host,
#   - a linker version script exporting only the torii_runner_* entry points
#     (so the library can be unloaded and never clashes with another),
#   - TORII_RUNNER_SOURCE_REVISION (reported by the server as part of
#     runner_build) set to the git revision of the runner's sources,
#   - linked against the header-only SDK only (never against the server).
#
# The target is called <name>; link extra libraries with
# target_link_libraries(<name> PRIVATE ...). Without OUTPUT_DIRECTORY the
# library lands in the current binary directory.
#
# Source revision: re-read on every build (not only at configure time), so a
# runner rebuilt after a commit never reports the previous commit. It is
# `git rev-parse --short=12 HEAD`, with "-dirty" when tracked files under the
# runner's source directory have uncommitted changes; "unknown" outside a git
# checkout. REVISION <text>, or -DTORII_RUNNER_REVISION=<text> for every runner
# of a build, sets it explicitly (e.g. a CI build from a source tarball).
#
# This file works both in the Torii source tree and from an installed
# ToriiSdk package (find_package(ToriiSdk CONFIG)): it needs only the
# torii::sdk target and the files installed beside it (runner.map,
# ToriiRevision.cmake).
include_guard(GLOBAL)

function(torii_add_runner name)
  # The directory of this file (runner.map and ToriiRevision.cmake sit beside
  # it), in the source tree and in an installed package alike.
  set(_sdk_cmake_dir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
  cmake_parse_arguments(ARG "" "VERSION_SCRIPT;OUTPUT_DIRECTORY;REVISION" "SOURCES"
                        ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR
      "torii_add_runner(${name}): unknown arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "torii_add_runner(${name}): SOURCES is required")
  endif()
  if(NOT TARGET torii::sdk)
    message(FATAL_ERROR
      "torii_add_runner(${name}): no torii::sdk target; call "
      "find_package(ToriiSdk CONFIG REQUIRED) first")
  endif()
  if(NOT ARG_VERSION_SCRIPT)
    set(ARG_VERSION_SCRIPT "${_sdk_cmake_dir}/runner.map")
  endif()
  if(NOT ARG_REVISION AND DEFINED TORII_RUNNER_REVISION AND
     NOT TORII_RUNNER_REVISION STREQUAL "")
    set(ARG_REVISION "${TORII_RUNNER_REVISION}")
  endif()

  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE torii::sdk)
  target_compile_features(${name} PRIVATE cxx_std_17)
  set_target_properties(${name} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME "torii_${name}"
    SUFFIX ".so"
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

  # Provenance: a one-line header force-included into every source of the
  # runner, defining TORII_RUNNER_SOURCE_REVISION for torii/runner.h.
  set(_header "${CMAKE_CURRENT_BINARY_DIR}/torii_runner_${name}/torii_runner_revision.h")
  set(_script "${_sdk_cmake_dir}/ToriiRevision.cmake")
  find_package(Git QUIET)
  if(ARG_REVISION)
    execute_process(COMMAND "${CMAKE_COMMAND}" "-DOUTPUT=${_header}"
                            "-DREVISION=${ARG_REVISION}" -P "${_script}")
  elseif(GIT_FOUND)
    set(_cmd "${CMAKE_COMMAND}" "-DOUTPUT=${_header}"
             "-DSOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}"
             "-DGIT_EXECUTABLE=${GIT_EXECUTABLE}" -P "${_script}")
    # Once now, so the header exists for the first build, then before every
    # build of the runner (rewritten only when the revision changes).
    execute_process(COMMAND ${_cmd})
    add_custom_target(${name}_revision
      COMMAND ${_cmd}
      BYPRODUCTS "${_header}"
      COMMENT "Reading the source revision of runner ${name}"
      VERBATIM)
    add_dependencies(${name} ${name}_revision)
  else()
    execute_process(COMMAND "${CMAKE_COMMAND}" "-DOUTPUT=${_header}"
                            "-DREVISION=unknown" -P "${_script}")
  endif()
  target_compile_options(${name} PRIVATE "SHELL:-include \"${_header}\"")
  set_property(TARGET ${name} APPEND PROPERTY OBJECT_DEPENDS "${_header}")
endfunction()
