# What `cmake --install` puts where (GNUInstallDirs), beyond the targets'
# own rules in lib/ and cli/. Components: the default one is what runs (CLI,
# library, configuration, hooks, man pages, bindings); "devel" is what builds
# against the library (header, .so link, pgfailover.pc, CMake package).
include(CMakePackageConfigHelpers)

set(PGFO_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/pgfailover
    CACHE STRING "Where pgfailoverConfig.cmake goes (relative to the prefix, or absolute)")

# pkg-config: libdir and includedir follow ${prefix} when they are relative,
# so `pkg-config --define-variable=prefix=...` relocates them.
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(PGFO_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(PGFO_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/pgfailover.pc.in
               ${PROJECT_BINARY_DIR}/pgfailover.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/pgfailover.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT devel)

# find_package(pgfailover) + target_link_libraries(x pgfailover::pgfailover)
install(EXPORT pgfailoverTargets NAMESPACE pgfailover::
        DESTINATION ${PGFO_INSTALL_CMAKEDIR} COMPONENT devel)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/pgfailoverConfig.cmake.in
  ${PROJECT_BINARY_DIR}/pgfailoverConfig.cmake
  INSTALL_DESTINATION ${PGFO_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/pgfailoverConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/pgfailoverConfig.cmake
              ${PROJECT_BINARY_DIR}/pgfailoverConfigVersion.cmake
        DESTINATION ${PGFO_INSTALL_CMAKEDIR} COMPONENT devel)

# pgpool-II hook files: pgpool.conf lines and the wrapper scripts; sample fence commands.
install(PROGRAMS ${PROJECT_SOURCE_DIR}/hooks/failover.sh ${PROJECT_SOURCE_DIR}/hooks/follow_primary.sh
                 ${PROJECT_SOURCE_DIR}/hooks/fence_nftables.sh ${PROJECT_SOURCE_DIR}/hooks/fence_ipmi.sh
        DESTINATION ${CMAKE_INSTALL_DATADIR}/pgfailover/hooks)
install(FILES ${PROJECT_SOURCE_DIR}/hooks/pgpool.conf.sample
        DESTINATION ${CMAKE_INSTALL_DATADIR}/pgfailover/hooks)

install(FILES ${PROJECT_SOURCE_DIR}/docs/man/pgfailover.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/pgfailover.conf.5
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

# Bindings: plain files, nothing to build. Python goes where the standard
# (posix_prefix) scheme puts pure modules, lib/python3.X/site-packages under
# the prefix (an RPM passes %{python3_sitelib}); Perl to share/perl5 (an RPM
# passes %{perl_vendorlib}).
option(PGFO_INSTALL_PYTHON "Install the Python binding" ON)
option(PGFO_INSTALL_PERL "Install the Perl binding" ON)
if(PGFO_INSTALL_PYTHON)
  if(NOT PGFO_INSTALL_PYTHONDIR)
    find_package(Python3 3.7 COMPONENTS Interpreter)
    if(Python3_FOUND)
      set(PGFO_PYTHONDIR_DEFAULT lib/python${Python3_VERSION_MAJOR}.${Python3_VERSION_MINOR}/site-packages)
    else()
      set(PGFO_PYTHONDIR_DEFAULT lib/python3/site-packages)
    endif()
    set(PGFO_INSTALL_PYTHONDIR ${PGFO_PYTHONDIR_DEFAULT} CACHE STRING
        "Where the pgfailover Python package goes (relative to the prefix, or absolute)")
  endif()
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/bindings/python/pgfailover
          DESTINATION ${PGFO_INSTALL_PYTHONDIR}
          FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)
endif()
if(PGFO_INSTALL_PERL)
  set(PGFO_INSTALL_PERLDIR ${CMAKE_INSTALL_DATADIR}/perl5 CACHE STRING
      "Where PgFailover.pm goes (relative to the prefix, or absolute)")
  install(FILES ${PROJECT_SOURCE_DIR}/bindings/perl/lib/PgFailover.pm
          DESTINATION ${PGFO_INSTALL_PERLDIR})
endif()
