# The installed package: headers, the CMake package (find_package(rmapkit), targets
# rmapkit::scenario, rmapkit::mm, rmapkit::model, rmapkit::kcheck, ...) and rmapkit.pc.
# Included last by the top-level CMakeLists.txt, when every library has been added.
include(CMakePackageConfigHelpers)

set(RMAPKIT_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/rmapkit)

# Public headers only: the private ones (kcheck/*.h) live beside their sources.
# The lab's headers go only with the lab.
set(rmapkit_unbuilt_headers "")
if(NOT RMAPKIT_BUILD_LAB)
  set(rmapkit_unbuilt_headers PATTERN lab EXCLUDE)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/rmapkit
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h" ${rmapkit_unbuilt_headers})
install(FILES ${PROJECT_BINARY_DIR}/include/rmapkit/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rmapkit)

install(EXPORT rmapkitTargets
        NAMESPACE rmapkit::
        DESTINATION ${RMAPKIT_INSTALL_CMAKEDIR})

# find_dependency() lines for the packages the libraries' link interface names.
get_property(deps GLOBAL PROPERTY RMAPKIT_PACKAGE_DEPENDENCIES)
set(RMAPKIT_FIND_DEPENDENCIES "")
foreach(dep IN LISTS deps)
  string(APPEND RMAPKIT_FIND_DEPENDENCIES "find_dependency(${dep})\n")
endforeach()
configure_package_config_file(cmake/rmapkitConfig.cmake.in
  ${PROJECT_BINARY_DIR}/rmapkitConfig.cmake
  INSTALL_DESTINATION ${RMAPKIT_INSTALL_CMAKEDIR})
# Before 1.0, a minor version may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/rmapkitConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/rmapkitConfig.cmake ${PROJECT_BINARY_DIR}/rmapkitConfigVersion.cmake
        DESTINATION ${RMAPKIT_INSTALL_CMAKEDIR})

# rmapkit.pc: the static libraries highest layer first, so that a one-pass linker resolves
# each from the ones after it. Its prefix is found from the .pc file's own directory, so the
# package can be installed to any prefix (cmake --install --prefix) and moved.
get_property(libs GLOBAL PROPERTY RMAPKIT_LIBRARIES)
list(REVERSE libs)
list(TRANSFORM libs PREPEND "-l")
list(JOIN libs " " RMAPKIT_PC_LIBS)
file(RELATIVE_PATH RMAPKIT_PC_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" RMAPKIT_PC_PREFIX "\${pcfiledir}/${RMAPKIT_PC_PREFIX}")
configure_file(cmake/rmapkit.pc.in ${PROJECT_BINARY_DIR}/rmapkit.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/rmapkit.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
