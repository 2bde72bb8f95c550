# `cmake --install build --prefix P` puts headers, static libraries,
# binaries and a CMake package under P, so another project can write
#   find_package(txmq CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE txmq::producer txmq::consumer)
# and a build without CMake can write
#   c++ app.cc $(pkg-config --cflags --libs txmq)
# (PKG_CONFIG_PATH=P/lib/pkgconfig for a prefix pkg-config does not search).
include(CMakePackageConfigHelpers)

set(TXMQ_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/txmq)
# Installed binaries find shared txmq libraries beside them (P/lib).
if(TXMQ_SHARED_LIBS)
  set_target_properties(txmqd PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
  foreach(tool txmqctl txmq-bench)
    if(TARGET ${tool})
      set_target_properties(${tool} PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
    endif()
  endforeach()
endif()

install(TARGETS txmq_protocol txmq_storage txmq_broker txmq_producer txmq_consumer txmq_postgres
  txmq_sqlite
  EXPORT txmqTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

foreach(module protocol storage broker producer consumer)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${module}/include/
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
    FILES_MATCHING PATTERN "*.h")
endforeach()

install(TARGETS txmqd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TXMQ_BUILD_TOOLS)
  install(TARGETS txmqctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  if(TARGET txmq-bench)
    install(TARGETS txmq-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endif()

install(EXPORT txmqTargets NAMESPACE txmq:: DESTINATION ${TXMQ_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/txmqConfig.cmake.in
  ${PROJECT_BINARY_DIR}/txmqConfig.cmake
  INSTALL_DESTINATION ${TXMQ_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/txmqConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/txmqConfig.cmake ${PROJECT_BINARY_DIR}/txmqConfigVersion.cmake
  DESTINATION ${TXMQ_CMAKE_DIR})

# The .pc file finds its prefix from its own place (${pcfiledir}), so it is
# right for whatever --prefix the install is given.
file(RELATIVE_PATH TXMQ_PC_PREFIX_FROM_PCDIR "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
configure_file(${PROJECT_SOURCE_DIR}/cmake/txmq.pc.in ${PROJECT_BINARY_DIR}/txmq.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/txmq.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
