# Helpers so that every CMakeLists.txt in the tree reads the same.

# Flags every rmapkit target gets; NO_SANITIZE keeps sanitizers out of one target.
function(rmapkit_target_defaults target)
  cmake_parse_arguments(ARG "NO_SANITIZE" "" "" ${ARGN})
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
    -Wimplicit-fallthrough)
  if(RMAPKIT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(RMAPKIT_SANITIZE AND NOT ARG_NO_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# rmapkit_add_library(NAME SOURCES ... DEPS ...): a static library rmapkit_NAME,
# aliased rmapkit::NAME, whose public headers live under include/rmapkit/.
function(rmapkit_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(rmapkit_${name} STATIC ${ARG_SOURCES})
  add_library(rmapkit::${name} ALIAS rmapkit_${name})
  target_include_directories(rmapkit_${name} PUBLIC ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(rmapkit_${name} PUBLIC ${ARG_DEPS})
  rmapkit_target_defaults(rmapkit_${name})
endfunction()

# rmapkit_add_gtest(NAME SOURCES ... DEPS ... LABELS ...): one GoogleTest binary,
# each of its tests registered with ctest under the given labels.
function(rmapkit_add_gtest name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS;PROPERTIES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  rmapkit_target_defaults(${name})
  include(GoogleTest)
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${ARG_LABELS}" ${ARG_PROPERTIES})
endfunction()
