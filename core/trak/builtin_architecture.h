// Architectures the tool writes itself, so that a training recipe can name a real network
// without the user exporting one from Python: `--model resnet9:width=16` for `modeldiff train`,
// "architecture": "resnet9:width=16" in a project.
//
// resnet9 is the ResNet-9 of the ModelDiff paper's CIFAR experiments (the reference
// repository's construct_rn9, from the FFCV CIFAR example) at a chosen width w; the paper's
// network is w = 64:
//
//   0  conv_bn(in, w)                       conv_bn(a, b, k=3, s=1, p=1) = Sequential(
//   1  conv_bn(w, 2w, k=5, s=2, p=2)            Conv2d(a, b, k, s, p, bias=False),
//   2  Residual(Sequential(conv_bn(2w, 2w),     BatchNorm2d(b), ReLU(inplace=True))
//                          conv_bn(2w, 2w)))  Residual(f)(x) = x + f(x), f in .module
//   3  conv_bn(2w, 4w)
//   4  MaxPool2d(2)
//   5  Residual(Sequential(conv_bn(4w, 4w), conv_bn(4w, 4w)))
//   6  conv_bn(4w, 2w, p=0)
//   7  AdaptiveMaxPool2d((1, 1))
//   8  Flatten
//   9  Linear(2w, classes, bias=False)
//   10 Mul(0.2)
//
// The file is an ordinary TorchScript module (torch.jit.load reads it; its state dict has the
// reference module's keys, "0.0.weight", "2.module.0.1.running_mean", "9.weight", so a
// checkpoint trained here loads into the Python class with load_state_dict). Its weights are
// the trainer's initialisation with seed 0, so the same settings always write the same bytes.
// Inputs of at least 4 x 4 pixels (the last conv_bn has no padding after one pooling).
//
// This header includes no LibTorch header.
#pragma once

#include <string>

namespace modeldiff::core {

struct BuiltinArchitecture {
  std::string name = "resnet9";
  int width = 16;       // channels of the first conv_bn (the paper: 64)
  int in_channels = 0;  // 0: from the training data
  int classes = 0;      // 0: from the training labels
};

// Whether `spec` names a built-in architecture rather than a file: "resnet9" or
// "resnet9:key=value,...". A file of that name is written "./resnet9".
bool is_builtin_architecture(const std::string& spec);

// "resnet9", "resnet9:width=32", "resnet9:width=8,in_channels=3,classes=100". Throws InputError
// naming the key for an unknown name or key, or a value out of range (width 1 to 1024,
// in_channels 1 to 64, classes 2 to 100000).
BuiltinArchitecture parse_builtin_architecture(const std::string& spec);

// The canonical spec: "resnet9:width=16,in_channels=1,classes=10"; in_channels and classes
// are left out while 0 (taken from the data).
std::string describe(const BuiltinArchitecture& architecture);

// Fills in_channels and classes where they are 0 (from the data: its channels, and one more
// than its largest label, at least 2).
BuiltinArchitecture with_data_defaults(BuiltinArchitecture architecture, int data_channels,
                                       int data_classes);

// The file name the architecture is written under: "resnet9-w16-c1-k10.pt".
std::string builtin_architecture_file_name(const BuiltinArchitecture& architecture);

// Writes the TorchScript file into `dir` (created if missing) under
// builtin_architecture_file_name, atomically, unless the file there already has exactly those
// bytes; returns its path. in_channels and classes must be set. Throws InputError when `dir`
// cannot be written.
std::string write_builtin_architecture(const BuiltinArchitecture& architecture,
                                       const std::string& dir);

}  // namespace modeldiff::core
