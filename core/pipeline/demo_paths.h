// Where the built-in Fashion-MNIST demo finds its files, for the CLI (`modeldiff demo`) and
// the GUI (Help > Open Demo) alike.
#pragma once

#include <string>

namespace modeldiff::core {

// The demo's TorchScript architecture (demo_cnn.pt): $MODELDIFF_DEMO_ARCHITECTURE, else beside
// an installed binary (<prefix>/share/modeldiff/), else in the source tree. Throws InputError
// naming the file that is missing.
std::string demo_architecture_path();

// The folder with Debian's dataset-fashion-mnist IDX files: $MODELDIFF_FASHION_MNIST, else
// /usr/share/datasets/fashion-mnist.
std::string default_fashion_mnist_dir();

// Where `modeldiff demo` and the GUI's Open Demo write by default: the user's data folder
// (XDG base directories), $XDG_DATA_HOME/modeldiff-studio/demo, else
// $HOME/.local/share/modeldiff-studio/demo. An installed binary's working directory may be
// anywhere (/, /usr/bin), so the default must not be relative. Only without HOME: the relative
// "modeldiff-demo".
// With `study` ("augmentation", ...): the folder demo-<study> beside it.
std::string default_demo_output_dir(const std::string& study = {});

}  // namespace modeldiff::core
