# Finddtl: the header-only diff library dtl, which installs no CMake or pkg-config file.
# Defines dtl_FOUND, dtl_INCLUDE_DIR and the imported target dtl::dtl.
# Use: find_package(dtl REQUIRED), then link dtl::dtl.
find_path(dtl_INCLUDE_DIR NAMES dtl/dtl.hpp)
mark_as_advanced(dtl_INCLUDE_DIR)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(dtl
  REQUIRED_VARS dtl_INCLUDE_DIR
  REASON_FAILURE_MESSAGE
    "<dtl/dtl.hpp> not found: install the Debian package libdtl-dev (scripts/install-deps.sh does), or set dtl_INCLUDE_DIR")

if(dtl_FOUND AND NOT TARGET dtl::dtl)
  add_library(dtl::dtl INTERFACE IMPORTED)
  set_target_properties(dtl::dtl PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${dtl_INCLUDE_DIR}")
endif()
