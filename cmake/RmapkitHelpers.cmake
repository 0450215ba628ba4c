# Helpers so that every CMakeLists.txt in the tree reads the same.
include(GNUInstallDirs)

# Where the package installs the agent the kernel back end starts: not on PATH (it is
# not run by hand), in the package's own libexec directory.
set(RMAPKIT_INSTALL_AGENTDIR ${CMAKE_INSTALL_LIBEXECDIR}/rmapkit)

# Flags every rmapkit target gets; NO_SANITIZE keeps sanitizers out of one target.
function(rmapkit_target_defaults target)
  cmake_parse_arguments(ARG "NO_SANITIZE" "" "" ${ARGN})
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
    -Wimplicit-fallthrough -Wmissing-declarations)
  if(RMAPKIT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(RMAPKIT_SANITIZE AND NOT ARG_NO_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# rmapkit_find_dependency(PACKAGE ARGS...): find_package(PACKAGE ARGS... REQUIRED) for a
# package the libraries' public link interface needs; the installed rmapkitConfig.cmake
# finds it again (find_dependency) for the package's consumers.
macro(rmapkit_find_dependency package)
  find_package(${package} ${ARGN} REQUIRED)
  set_property(GLOBAL APPEND PROPERTY RMAPKIT_PACKAGE_DEPENDENCIES "${package} ${ARGN}")
endmacro()

# rmapkit_add_library(NAME SOURCES ... DEPS ... PRIVATE_DEPS ...): a static library
# rmapkit_NAME whose public headers live under include/rmapkit/. It is rmapkit::NAME both
# inside the tree (an alias) and for a consumer of the installed package (its export name);
# it is installed, exported, and listed in rmapkit.pc. DEPS are its public link interface:
# targets of this tree or packages found with rmapkit_find_dependency. PRIVATE_DEPS are
# header-only libraries only its sources include (dtl, nlohmann_json): kept out of the
# installed package's link interface, so that a consumer does not need them.
function(rmapkit_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target rmapkit_${name})
  add_library(${target} STATIC ${ARG_SOURCES})
  add_library(rmapkit::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>  # the generated rmapkit/version.h
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_link_libraries(${target} PUBLIC ${ARG_DEPS})
  foreach(dep IN LISTS ARG_PRIVATE_DEPS)
    target_link_libraries(${target} PRIVATE $<BUILD_INTERFACE:${dep}>)
  endforeach()
  rmapkit_target_defaults(${target})
  if(RMAPKIT_INSTALL)
    install(TARGETS ${target} EXPORT rmapkitTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  endif()
  # In the order added, lowest layer first (rmapkit.pc lists them highest first).
  set_property(GLOBAL APPEND PROPERTY RMAPKIT_LIBRARIES ${target})
endfunction()

# rmapkit_install_program(TARGET DESTINATION DIR [EXPORT_NAME NAME]): installs an
# executable and exports it as rmapkit::NAME (default: TARGET), e.g. for
# add_custom_command in a consumer.
function(rmapkit_install_program target)
  cmake_parse_arguments(ARG "" "DESTINATION;EXPORT_NAME" "" ${ARGN})
  if(ARG_EXPORT_NAME)
    set_target_properties(${target} PROPERTIES EXPORT_NAME ${ARG_EXPORT_NAME})
  endif()
  if(RMAPKIT_INSTALL)
    install(TARGETS ${target} EXPORT rmapkitTargets RUNTIME DESTINATION ${ARG_DESTINATION})
  endif()
endfunction()

# rmapkit_add_gtest(NAME SOURCES ... DEPS ... LABELS ...): one GoogleTest binary,
# each of its tests registered with ctest under the given labels. Every test binary
# names the build's agent in $RMAPKIT_AGENT (rmapkit_test_agent, tests/CMakeLists.txt),
# so that a kernel run started in the test process itself finds it.
function(rmapkit_add_gtest name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS;PROPERTIES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} rmapkit_test_agent GTest::gtest GTest::gtest_main)
  rmapkit_target_defaults(${name})
  include(GoogleTest)
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${ARG_LABELS}" ${ARG_PROPERTIES})
endfunction()
