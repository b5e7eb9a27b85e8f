# Installation rules and the Debian package (.deb) of ModelDiff Studio.
# Included at the end of the top-level CMakeLists.txt, once every target exists.
#   cmake --build build && cpack --config build/CPackConfig.cmake -B build/package
#     ->  build/package/modeldiff-studio_<version>-<release>_<arch>.deb
# packaging/check_package.sh builds and checks it (lintian, metadata); packaging/test_install.sh
# installs it into a clean Debian 12 root.
include(GNUInstallDirs)
# Directories of the package are 0755 whatever the umask of whoever builds it (lintian).
set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                                                GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
set(_modeldiff_doc_dir ${CMAKE_INSTALL_DATADIR}/doc/modeldiff-studio)
set(_modeldiff_gen_dir ${PROJECT_BINARY_DIR}/packaging)

if(TARGET modeldiff)
  install(TARGETS modeldiff RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  # Its LibTorch subcommands (app/CMakeLists.txt): a private module, found by `modeldiff`
  # relative to its own folder (/usr/lib/x86_64-linux-gnu/modeldiff); not executable, as
  # shared libraries are not.
  if(TARGET modeldiff-torch-commands)
    get_target_property(_modeldiff_module_dir modeldiff-torch-commands MODELDIFF_INSTALL_DIR)
    install(TARGETS modeldiff-torch-commands LIBRARY DESTINATION ${_modeldiff_module_dir}
            PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  endif()
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

# Man pages and bash completion, generated from the programs' --help around hand-written text
# (resources/man/*.1.in), and the gzipped Debian changelog: packaging/gen_docs.py. Running the
# programs needs no display (Qt offscreen). Not in sanitizer builds, which are never packaged.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND NOT MODELDIFF_SANITIZE)
  set(_gen ${PROJECT_SOURCE_DIR}/packaging/gen_docs.py)
  set(_changelog ${PROJECT_SOURCE_DIR}/packaging/changelog)
  set(_outputs ${_modeldiff_gen_dir}/changelog.Debian.gz)
  set(_args --out ${_modeldiff_gen_dir} --changelog ${_changelog} --version ${PROJECT_VERSION})
  set(_depends ${_gen} ${_changelog})
  if(TARGET modeldiff)
    list(APPEND _outputs ${_modeldiff_gen_dir}/modeldiff.1.gz
         ${_modeldiff_gen_dir}/modeldiff.bash-completion)
    list(APPEND _args --modeldiff $<TARGET_FILE:modeldiff>)
    list(APPEND _depends modeldiff ${PROJECT_SOURCE_DIR}/resources/man/modeldiff.1.in)
    if(TARGET modeldiff-torch-commands)
      list(APPEND _depends modeldiff-torch-commands)  # the --help of its subcommands
    endif()
    install(FILES ${_modeldiff_gen_dir}/modeldiff.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
    install(FILES ${_modeldiff_gen_dir}/modeldiff.bash-completion
            DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME modeldiff)
  endif()
  if(TARGET modeldiff-gui)
    list(APPEND _outputs ${_modeldiff_gen_dir}/modeldiff-gui.1.gz)
    list(APPEND _args --gui $<TARGET_FILE:modeldiff-gui>)
    list(APPEND _depends modeldiff-gui ${PROJECT_SOURCE_DIR}/resources/man/modeldiff-gui.1.in)
    install(FILES ${_modeldiff_gen_dir}/modeldiff-gui.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
  endif()
  add_custom_command(
    OUTPUT ${_outputs}
    COMMAND ${Python3_EXECUTABLE} ${_gen} ${_args}
    DEPENDS ${_depends}
    COMMENT "Generating the man pages, bash completion and Debian changelog"
    VERBATIM)
  add_custom_target(modeldiff_package_docs ALL DEPENDS ${_outputs})
  install(FILES ${_modeldiff_gen_dir}/changelog.Debian.gz DESTINATION ${_modeldiff_doc_dir})
elseif(NOT MODELDIFF_SANITIZE)
  message(WARNING "No Python 3: the package would have no man pages or changelog "
                  "(packaging/gen_docs.py needs it)")
endif()
install(FILES ${PROJECT_SOURCE_DIR}/packaging/copyright DESTINATION ${_modeldiff_doc_dir})
install(FILES ${PROJECT_SOURCE_DIR}/packaging/lintian-overrides
        DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides RENAME modeldiff-studio)

# Debian wants "Name <address>"; whoever publishes the package sets their own.
set(MODELDIFF_PACKAGE_MAINTAINER
    "ModelDiff Studio developers <maintainers@users.noreply.r-seed-8b4e608e.example>"
    CACHE STRING "Maintainer field of the Debian package: Name <email>")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME modeldiff-studio)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "ModelDiff Studio developers")
set(CPACK_PACKAGE_CONTACT "${MODELDIFF_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${MODELDIFF_PACKAGE_MAINTAINER}")
# Version 0.1.0-1: the Debian revision makes it a non-native package, whose changelog is
# changelog.Debian.gz (packaging/changelog, whose latest entry must be this version).
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
# The synopsis line comes from CPACK_PACKAGE_DESCRIPTION_SUMMARY; this is the long text
# (lines under 80 characters, lintian).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "ModelDiff Studio compares the data-attribution score matrices (datamodels,\n\
TRAK) of two training algorithms and finds the directions in which the\n\
training data influences one algorithm's predictions but not the other's\n\
(residual PCA), with the training examples that drive each direction.\n\
.\n\
It ships a Qt desktop application, modeldiff-gui, and a headless\n\
command-line tool, modeldiff, with a Fashion-MNIST demo (the data comes\n\
from the dataset-fashion-mnist package).")

# The shared libraries the executables link come from dpkg-shlibdeps, so Depends follows
# what is really linked (Qt's xcb and offscreen platform plugins ship in libqt6gui6, its SVG
# plugins in libqt6svg6, both linked). Added by hand, what is loaded without being linked:
# libopenblas0-pthread. The build links libblas.so.3 / liblapack.so.3, which the reference
# BLAS would satisfy; OpenBLAS behind those names is several times faster, and installing it
# selects it in the alternatives' auto mode (as packaging/install_deps.sh does).
set(_modeldiff_extra_depends "libopenblas0-pthread")
# The Python package's extension modules are built for one Python minor version (Debian's
# convention for them: python3 (>= X.Y~), python3 (<< X.Y+1)).
if(TARGET _modeldiff)
  math(EXPR _modeldiff_python_next "${Python3_VERSION_MINOR} + 1")
  string(APPEND _modeldiff_extra_depends
         ", python3 (>= ${Python3_VERSION_MAJOR}.${Python3_VERSION_MINOR}~)"
         ", python3 (<< ${Python3_VERSION_MAJOR}.${_modeldiff_python_next})")
endif()
# dpkg-shlibdeps (dpkg-dev, in packaging/install_deps.sh) is needed by cpack only; without it
# cpack stops with an error rather than guess a list.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "${_modeldiff_extra_depends}")
# The demo's data; the program runs without it (the demo then says which folder is missing).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "dataset-fashion-mnist")
# The Python package (python/, in /usr/lib/python3/dist-packages/modeldiff) imports numpy and
# torch: Debian's python3-torch links the same libtorch.so.1.13 as its `_trak` module.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "python3-torch, python3-numpy, python3-tqdm")

include(CPack)
