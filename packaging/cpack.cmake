# Installation rules and the Debian package (.deb) of ModelDiff Studio.
# Included at the end of the top-level CMakeLists.txt, once every target exists.
#   cmake --build build && cd build && cpack        ->  modeldiff-studio_<version>_<arch>.deb
include(GNUInstallDirs)

if(TARGET modeldiff)
  install(TARGETS modeldiff RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  # `modeldiff demo` finds its architecture at <prefix>/share/modeldiff/demo_cnn.pt.
  install(FILES ${PROJECT_SOURCE_DIR}/resources/demo/demo_cnn.pt
          DESTINATION ${CMAKE_INSTALL_DATADIR}/modeldiff)
endif()
# The desktop integration launches modeldiff-gui, so it ships only with it.
if(TARGET modeldiff-gui)
  install(TARGETS modeldiff-gui RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(FILES ${PROJECT_SOURCE_DIR}/resources/io.modeldiff.Studio.desktop
          DESTINATION ${CMAKE_INSTALL_DATADIR}/applications)
  install(FILES ${PROJECT_SOURCE_DIR}/resources/icons/modeldiff.svg
          DESTINATION ${CMAKE_INSTALL_DATADIR}/icons/hicolor/scalable/apps
          RENAME io.modeldiff.Studio.svg)
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/io.modeldiff.Studio.metainfo.xml
          DESTINATION ${CMAKE_INSTALL_DATADIR}/metainfo)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME modeldiff-studio)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "ModelDiff Studio developers")
set(CPACK_PACKAGE_CONTACT "ModelDiff Studio developers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_PACKAGE_MAINTAINER "ModelDiff Studio developers")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
# The synopsis line comes from CPACK_PACKAGE_DESCRIPTION_SUMMARY; this is the long text.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "ModelDiff Studio compares the data-attribution score matrices (datamodels, TRAK) of two\n\
training algorithms and finds the directions in which the training data influences one\n\
algorithm's predictions but not the other's (residual PCA). It ships a Qt desktop\n\
application, modeldiff-gui, and a headless command-line tool, modeldiff.")

# The shared libraries the executables link come from dpkg-shlibdeps, so Depends follows
# what is really linked. Added by hand: what is loaded without being linked.
#  - libopenblas0-pthread: the build links libblas.so.3; OpenBLAS behind it is several
#    times faster than the reference BLAS that would satisfy that link alone.
#  - qt6-qpa-plugins, libqt6svg6: Qt's platform plugins and its SVG icon engine.
set(_modeldiff_extra_depends "libopenblas0-pthread")
if(TARGET modeldiff-gui)
  string(APPEND _modeldiff_extra_depends ", qt6-qpa-plugins, libqt6svg6")
endif()
find_program(MODELDIFF_DPKG_SHLIBDEPS dpkg-shlibdeps)
mark_as_advanced(MODELDIFF_DPKG_SHLIBDEPS)
if(MODELDIFF_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "${_modeldiff_extra_depends}")
else()
  # Without dpkg-dev: the Debian 12 runtime libraries of what the project uses.
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
      "libc6, libstdc++6, libgcc-s1, libgomp1, libhdf5-103-1, libzip4, zlib1g, \
libtorch1.13, libopencv-core406, libopencv-imgproc406, libopencv-imgcodecs406, \
${_modeldiff_extra_depends}")
  if(TARGET modeldiff-gui)
    string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS
           ", libqt6core6, libqt6gui6, libqt6widgets6, libqcustomplot2.1-qt6")
  endif()
endif()
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "dataset-fashion-mnist")

include(CPack)
