# The installable library: libswitchyard.so (only the public API exported) and libswitchyard.a
# from the same archives, the public headers, the switchyard tool, a CMake package
# (find_package(Switchyard CONFIG) -> Switchyard::switchyard) with components for the optional
# parts, a pkg-config file, and .deb packages through CPack.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(sy_archives sy_runtime sy_jit sy_comm sy_cache sy_core sy_templates)
# NOTE: while the major version is 0 the minor is part of the ABI (docs/embedding.md).
set(SY_SOVERSION "${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}")

# Both libraries are made of the archives' objects (CMake cannot whole-archive archives that
# depend on each other), and link what those archives link.
set(sy_objects "")
foreach(archive IN LISTS sy_archives)
  list(APPEND sy_objects "$<TARGET_OBJECTS:${archive}>")
endforeach()
set(sy_external_libs Threads::Threads ${CMAKE_DL_LIBS})
set(sy_pc_private "-lpthread -ldl")
if(SY_WITH_CPU_JIT)
  list(APPEND sy_external_libs "${SY_LIBCLANG_CPP}" "${SY_LIBLLVM}")
  string(APPEND sy_pc_private " ${SY_LIBCLANG_CPP} ${SY_LIBLLVM}")
endif()
if(TARGET MPI::MPI_CXX)
  list(APPEND sy_external_libs MPI::MPI_CXX)
  foreach(lib IN LISTS MPI_CXX_LIBRARIES)
    string(APPEND sy_pc_private " ${lib}")
  endforeach()
endif()

add_library(switchyard_shared SHARED "${PROJECT_SOURCE_DIR}/runtime/library_version.cpp" ${sy_objects})
target_link_libraries(switchyard_shared PRIVATE ${sy_external_libs})
target_include_directories(switchyard_shared PRIVATE "${PROJECT_BINARY_DIR}/include")
target_link_libraries(switchyard_shared INTERFACE dlpack::dlpack)  # the public headers include dlpack.h
target_link_options(switchyard_shared PRIVATE "-Wl,--version-script=${PROJECT_SOURCE_DIR}/cmake/switchyard.map"
                    "-Wl,--exclude-libs,ALL" "-Wl,--no-undefined")
set_target_properties(switchyard_shared PROPERTIES OUTPUT_NAME switchyard EXPORT_NAME switchyard
                      VERSION "${PROJECT_VERSION}" SOVERSION "${SY_SOVERSION}"
                      LINK_DEPENDS "${PROJECT_SOURCE_DIR}/cmake/switchyard.map")
target_include_directories(switchyard_shared INTERFACE
  "$<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include;${PROJECT_BINARY_DIR}/include;${PROJECT_SOURCE_DIR}/templates>"
  "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
sy_target_defaults(switchyard_shared)

# The static archive: the same objects; an application links what they need (the package's
# target carries it, switchyard.pc lists it in Libs.private).
add_library(switchyard_static STATIC ${sy_objects})
set_target_properties(switchyard_static PROPERTIES OUTPUT_NAME switchyard EXPORT_NAME switchyard_static)
target_include_directories(switchyard_static INTERFACE
  "$<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include;${PROJECT_BINARY_DIR}/include;${PROJECT_SOURCE_DIR}/templates>"
  "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
target_link_libraries(switchyard_static INTERFACE ${sy_external_libs} dlpack::dlpack)

set(SY_COMPONENT_CPU_JIT ${SY_WITH_CPU_JIT})
set(SY_COMPONENT_MPI OFF)
if(TARGET MPI::MPI_CXX)
  set(SY_COMPONENT_MPI ON)
endif()

# Headers: the public set, the generated version, and the activation enum the layer config uses.
install(DIRECTORY include/switchyard DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT dev
        FILES_MATCHING PATTERN "*.h")
install(FILES "${PROJECT_BINARY_DIR}/include/switchyard/version.h"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/switchyard" COMPONENT dev)
install(FILES templates/switchyard/common/activation.h
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/switchyard/common" COMPONENT dev)
install(TARGETS switchyard_shared EXPORT SwitchyardTargets
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT runtime NAMELINK_COMPONENT dev)
install(TARGETS switchyard_static EXPORT SwitchyardTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT dev)
install(TARGETS switchyard RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT runtime)
install(EXPORT SwitchyardTargets NAMESPACE Switchyard:: DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/Switchyard"
        COMPONENT dev)
configure_package_config_file(cmake/SwitchyardConfig.cmake.in "${PROJECT_BINARY_DIR}/SwitchyardConfig.cmake"
                              INSTALL_DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/Switchyard")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/SwitchyardConfigVersion.cmake"
                                 COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/SwitchyardConfig.cmake" "${PROJECT_BINARY_DIR}/SwitchyardConfigVersion.cmake"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/Switchyard" COMPONENT dev)
configure_file(cmake/switchyard.pc.in "${PROJECT_BINARY_DIR}/switchyard.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/switchyard.pc" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig" COMPONENT dev)

# .deb packages with Debian's conventions: libswitchyardX.Y (the shared library and the tool)
# and libswitchyard-dev (headers, the static archive, the CMake and pkg-config files).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME switchyard)
set(CPACK_PACKAGE_VENDOR "Switchyard")
set(CPACK_PACKAGE_CONTACT "Switchyard developers <switchyard@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "JIT kernel compiler and runtime for Mixture-of-Experts layers")
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME "libswitchyard${SY_SOVERSION}")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME "libswitchyard-dev")
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libswitchyard${SY_SOVERSION} (= ${PROJECT_VERSION}), libdlpack-dev")
set(CPACK_COMPONENT_DEV_DEPENDS runtime)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)  # debug info stays in the build tree
include(CPack)
