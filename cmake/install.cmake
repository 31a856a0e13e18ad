# `cmake --install build --prefix P`: P/bin/illada, and with ILLADA_SHARED P/lib/libillada.so
# (+ SONAME link), P/include/illada/illada.h, the CMake package (find_package(illada) ->
# illada::illada) in P/lib/cmake/illada, P/lib/pkgconfig/illada.pc and the Python package in
# P/python/illada. Every installed file finds the others relative to itself, so a prefix can
# be moved.
install(TARGETS illada RUNTIME DESTINATION bin)

if(TARGET illada_shared)
  include(CMakePackageConfigHelpers)
  install(TARGETS illada_shared EXPORT illadaTargets
          LIBRARY DESTINATION lib
          INCLUDES DESTINATION include)
  install(FILES ${PROJECT_SOURCE_DIR}/include/illada/illada.h DESTINATION include/illada)
  install(EXPORT illadaTargets NAMESPACE illada:: DESTINATION lib/cmake/illada)
  configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/illadaConfig.cmake.in
    ${CMAKE_BINARY_DIR}/illadaConfig.cmake INSTALL_DESTINATION lib/cmake/illada)
  # Before 1.0 a minor version may change the ABI (the SONAME says which).
  write_basic_package_version_file(${CMAKE_BINARY_DIR}/illadaConfigVersion.cmake
    VERSION ${ILLADA_VERSION} COMPATIBILITY SameMinorVersion)
  install(FILES ${CMAKE_BINARY_DIR}/illadaConfig.cmake ${CMAKE_BINARY_DIR}/illadaConfigVersion.cmake
          DESTINATION lib/cmake/illada)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/illada.pc.in ${CMAKE_BINARY_DIR}/illada.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/illada.pc DESTINATION lib/pkgconfig)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/python/illada DESTINATION python
          PATTERN __pycache__ EXCLUDE PATTERN "*.pyc" EXCLUDE)
endif()
