#include "core/trak/builtin_architecture.h"

#include <torch/script.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <vector>

#include "core/base/atomic_file.h"
#include "core/base/error.h"
#include "core/trak/detail/training.h"

namespace modeldiff::core {

namespace {

constexpr const char* kResNet9 = "resnet9";

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

int parse_int(const std::string& spec, const std::string& key, const std::string& text, int lo,
              int hi) {
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || v < lo || v > hi)
    throw InputError(spec, "bad value in a built-in architecture")
        .key(key)
        .expected("a whole number from " + std::to_string(lo) + " to " + std::to_string(hi))
        .found(text);
  return static_cast<int>(v);
}

// Trainable, as nn.Parameter is.
torch::Tensor parameter(torch::Tensor t) {
  return t.set_requires_grad(true);
}

// Builds modules of one compilation unit; every module gets its own (mangled) class, so that
// constants such as a convolution's stride are part of its code, as in a scripted nn.Module.
class Builder {
 public:
  torch::jit::Module module(const std::string& type) {
    torch::jit::Module m(c10::QualifiedName("__torch__.modeldiff.builtin." + type), cu_,
                         /*shouldMangle=*/true);
    m.register_attribute("training", c10::BoolType::get(), false);
    return m;
  }

  torch::jit::Module conv2d(int in, int out, int kernel, int stride, int padding) {
    torch::jit::Module m = module("Conv2d");
    m.register_parameter("weight", parameter(torch::zeros({out, in, kernel, kernel})), false);
    const std::string s = std::to_string(stride), p = std::to_string(padding);
    m.define("def forward(self, x):\n    return torch.conv2d(x, self.weight, None, [" + s + ", " +
             s + "], [" + p + ", " + p + "], [1, 1], 1)\n");
    return m;
  }

  torch::jit::Module batch_norm(int channels) {
    torch::jit::Module m = module("BatchNorm2d");
    m.register_parameter("weight", parameter(torch::ones({channels})), false);
    m.register_parameter("bias", parameter(torch::zeros({channels})), false);
    m.register_buffer("running_mean", torch::zeros({channels}));
    m.register_buffer("running_var", torch::ones({channels}));
    m.register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
    m.define(
        "def forward(self, x):\n"
        "    if self.training:\n"
        "        self.num_batches_tracked.add_(1)\n"
        "    return torch.batch_norm(x, self.weight, self.bias, self.running_mean,\n"
        "                            self.running_var, self.training, 0.1, 1e-05, False)\n");
    return m;
  }

  // Sequential(Conv2d(bias=False), BatchNorm2d, ReLU(inplace=True)); the ReLU has no state.
  torch::jit::Module conv_bn(int in, int out, int kernel = 3, int stride = 1, int padding = 1) {
    torch::jit::Module m = module("Sequential");
    m.register_module("0", conv2d(in, out, kernel, stride, padding));
    m.register_module("1", batch_norm(out));
    m.define(
        "def forward(self, x):\n"
        "    x = getattr(self, \"0\").forward(x)\n"
        "    x = getattr(self, \"1\").forward(x)\n"
        "    return torch.relu_(x)\n");
    return m;
  }

  // Residual(Sequential(conv_bn(c, c), conv_bn(c, c))): x + f(x).
  torch::jit::Module residual(int channels) {
    torch::jit::Module inner = module("Sequential");
    inner.register_module("0", conv_bn(channels, channels));
    inner.register_module("1", conv_bn(channels, channels));
    inner.define(
        "def forward(self, x):\n"
        "    x = getattr(self, \"0\").forward(x)\n"
        "    return getattr(self, \"1\").forward(x)\n");
    torch::jit::Module m = module("Residual");
    m.register_module("module", inner);
    m.define("def forward(self, x):\n    return x + self.module.forward(x)\n");
    return m;
  }

  torch::jit::Module linear(int in, int out) {
    torch::jit::Module m = module("Linear");
    m.register_parameter("weight", parameter(torch::zeros({out, in})), false);
    m.define("def forward(self, x):\n    return torch.linear(x, self.weight, None)\n");
    return m;
  }

 private:
  std::shared_ptr<torch::jit::CompilationUnit> cu_ =
      std::make_shared<torch::jit::CompilationUnit>();
};

torch::jit::Module build_resnet9(const BuiltinArchitecture& a) {
  Builder b;
  const int w = a.width;
  torch::jit::Module m = b.module("ResNet9");
  m.register_module("0", b.conv_bn(a.in_channels, w));
  m.register_module("1", b.conv_bn(w, 2 * w, 5, 2, 2));
  m.register_module("2", b.residual(2 * w));
  m.register_module("3", b.conv_bn(2 * w, 4 * w));
  m.register_module("5", b.residual(4 * w));
  m.register_module("6", b.conv_bn(4 * w, 2 * w, 3, 1, 0));
  m.register_module("9", b.linear(2 * w, a.classes));
  m.define(
      "def forward(self, x):\n"
      "    x = getattr(self, \"0\").forward(x)\n"
      "    x = getattr(self, \"1\").forward(x)\n"
      "    x = getattr(self, \"2\").forward(x)\n"
      "    x = getattr(self, \"3\").forward(x)\n"
      "    x = torch.max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], False)\n"
      "    x = getattr(self, \"5\").forward(x)\n"
      "    x = getattr(self, \"6\").forward(x)\n"
      "    x = torch.adaptive_max_pool2d(x, [1, 1])[0]\n"
      "    x = torch.flatten(x, 1)\n"
      "    x = getattr(self, \"9\").forward(x)\n"
      "    return x * 0.2\n");
  detail::initialise_parameters(m, /*seed=*/0);
  m.eval();
  return m;
}

std::string read_file_bytes(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {};
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace

bool is_builtin_architecture(const std::string& spec) {
  return spec == kResNet9 || starts_with(spec, std::string(kResNet9) + ":");
}

BuiltinArchitecture parse_builtin_architecture(const std::string& spec) {
  if (!is_builtin_architecture(spec))
    throw InputError(spec, "not a built-in architecture").expected("resnet9[:width=W,...]");
  BuiltinArchitecture a;
  const std::size_t colon = spec.find(':');
  if (colon == std::string::npos) return a;
  std::stringstream rest(spec.substr(colon + 1));
  std::string item;
  while (std::getline(rest, item, ',')) {
    const std::size_t eq = item.find('=');
    const std::string key = item.substr(0, eq);
    if (eq == std::string::npos)
      throw InputError(spec, "a setting of a built-in architecture has no value")
          .key(key)
          .expected("key=value");
    const std::string value = item.substr(eq + 1);
    if (key == "width") {
      a.width = parse_int(spec, key, value, 1, 1024);
    } else if (key == "in_channels") {
      a.in_channels = parse_int(spec, key, value, 1, 64);
    } else if (key == "classes") {
      a.classes = parse_int(spec, key, value, 2, 100000);
    } else {
      throw InputError(spec, "unknown setting of a built-in architecture")
          .key(key)
          .expected("width, in_channels or classes");
    }
  }
  return a;
}

std::string describe(const BuiltinArchitecture& a) {
  std::string s = a.name + ":width=" + std::to_string(a.width);
  if (a.in_channels > 0) s += ",in_channels=" + std::to_string(a.in_channels);
  if (a.classes > 0) s += ",classes=" + std::to_string(a.classes);
  return s;
}

BuiltinArchitecture with_data_defaults(BuiltinArchitecture a, int data_channels, int data_classes) {
  if (a.in_channels == 0) a.in_channels = data_channels;
  if (a.classes == 0) a.classes = std::max(2, data_classes);
  return a;
}

std::string builtin_architecture_file_name(const BuiltinArchitecture& a) {
  return a.name + "-w" + std::to_string(a.width) + "-c" + std::to_string(a.in_channels) + "-k" +
         std::to_string(a.classes) + ".pt";
}

std::string write_builtin_architecture(const BuiltinArchitecture& a, const std::string& dir) {
  MD_ASSERT(a.in_channels > 0 && a.classes > 0);
  std::ostringstream bytes;
  build_resnet9(a).save(bytes);
  const std::string content = bytes.str();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!std::filesystem::is_directory(dir))
    throw InputError(dir, "cannot create the folder for a built-in architecture" +
                              (ec ? ": " + ec.message() : std::string()));
  const std::filesystem::path path = std::filesystem::path(dir) / builtin_architecture_file_name(a);
  if (read_file_bytes(path) != content)
    write_file_atomically(path.string(), {ByteRange{content.data(), content.size()}});
  return path.string();
}

}  // namespace modeldiff::core
