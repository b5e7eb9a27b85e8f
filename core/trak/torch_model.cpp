#include "core/trak/torch_model.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include <unistd.h>

#include <caffe2/serialize/inline_container.h>

#include "core/base/error.h"
#include "core/base/error_report.h"
#include "core/io/array_file.h"
#include "core/io/safetensors.h"
#include "core/io/torch_archive.h"
#include "core/trak/detail/torch_convert.h"
#include "core/trak/detail/torch_model_impl.h"

namespace modeldiff::core {

namespace {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// LibTorch errors carry a C++ backtrace (c10::Error) or a TorchScript traceback (errors raised
// inside the interpreter, whose last line holds the cause); users get one line.
std::string summarise(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  std::string s = torchscript_error_cause(c10_error != nullptr ? c10_error->what_without_backtrace()
                                                               : e.what());
  const auto nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  return s;
}

void require_file(const std::string& path, const std::string& role) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw InputError(path, role + " file not found").expected("an existing file");
  }
}

// Every parameter and buffer with its recursive name ("0.weight", "bn.running_mean"), in the
// order of Python's state_dict(): each module's own parameters, then its own buffers, then its
// children's, depth first.
void append_state(const torch::jit::Module& module, const std::string& prefix, NamedTensors& out) {
  for (const auto& p : module.named_parameters(/*recurse=*/false)) {
    out.emplace_back(prefix + p.name, p.value);
  }
  for (const auto& b : module.named_buffers(/*recurse=*/false)) {
    out.emplace_back(prefix + b.name, b.value);
  }
  for (const auto& child : module.named_children()) {
    append_state(child.value, prefix + child.name + ".", out);
  }
}

NamedTensors module_state(const torch::jit::Module& module) {
  NamedTensors out;
  append_state(module, "", out);
  return out;
}

// True when `path` holds tensors our readers accept: a torch.save archive or safetensors.
bool is_state_dict_file(const std::string& path) {
  try {
    const FileFormat format = detect_format(path);
    if (format == FileFormat::kSafetensors) return true;
    if (format == FileFormat::kTorch) {
      read_torch_file(path);
      return true;
    }
  } catch (const InputError&) {
  }
  return false;
}

// Loads a TorchScript archive on the CPU. `without_architecture`: the file is meant to be a full
// model (no separate architecture), which changes the advice when it is a state dict.
torch::jit::Module load_script(const std::string& path, bool without_architecture) {
  require_file(path, without_architecture ? "model" : "architecture");
  try {
    return torch::jit::load(path, torch::Device(torch::kCPU));
  } catch (const std::exception& e) {  // c10::Error mostly; the unpickler may throw others
    if (is_state_dict_file(path)) {
      if (without_architecture) {
        throw InputError(path,
                         "is a state dict (weights only) and no architecture was given; pass the "
                         "TorchScript architecture (torch.jit.script(model).save) as well");
      }
      throw InputError(path,
                       "is a state dict, not a TorchScript architecture; pass it as a checkpoint "
                       "and give the file written by torch.jit.script(model).save as the "
                       "architecture");
    }
    throw InputError(path, "cannot load as TorchScript: " + summarise(e))
        .expected("a file written by torch.jit.script(model).save(path)");
  }
}

struct Checkpoint {
  NamedTensors tensors;  // names as the module's state dict spells them
  std::string prefix;    // nesting key the weights were taken from ("model", ...), or ""
};

Checkpoint read_checkpoint(const std::string& path) {
  require_file(path, "checkpoint");
  const FileFormat format = detect_format(path);
  std::vector<NamedArray> arrays;
  if (format == FileFormat::kSafetensors) {
    arrays = read_safetensors(path);
  } else if (format == FileFormat::kTorch) {
    try {
      arrays = read_torch_file(path);
    } catch (const InputError& reader_error) {
      // A TorchScript file of the same architecture also carries weights.
      torch::jit::Module module;
      try {
        module = torch::jit::load(path, torch::Device(torch::kCPU));
      } catch (const std::exception&) {
        throw reader_error;  // the reader says best what is wrong with the archive
      }
      return {module_state(module), ""};
    }
  } else {
    throw InputError(path, "not a checkpoint")
        .expected("a torch.save state dict, a safetensors file or a TorchScript file")
        .found(format_name(format));
  }
  Checkpoint out;
  arrays = select_state_dict(std::move(arrays), &out.prefix);
  out.tensors.reserve(arrays.size());
  for (const NamedArray& a : arrays) out.tensors.emplace_back(a.name, detail::to_tensor(a.array));
  return out;
}

// "a, b, c, ... (12 more)"
std::string list_names(const std::vector<std::string>& names, std::size_t limit = 10) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > limit) s += ", ... (" + std::to_string(names.size() - limit) + " more)";
  return s;
}

std::string with_thousands(std::int64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  const std::size_t start = digits[0] == '-' ? 1 : 0;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > start && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Matches the checkpoint against every parameter and buffer of `module` and copies it in.
void copy_checkpoint(torch::jit::Module& module, const Checkpoint& checkpoint,
                     const std::string& checkpoint_path, const std::string& architecture_path) {
  std::unordered_map<std::string, const torch::Tensor*> by_name;
  for (const auto& [name, tensor] : checkpoint.tensors) by_name.emplace(name, &tensor);

  const NamedTensors targets = module_state(module);
  std::set<std::string> target_names;
  std::vector<std::string> missing, misshaped, unexpected;
  for (const auto& [name, tensor] : targets) {
    target_names.insert(name);
    const auto it = by_name.find(name);
    if (it == by_name.end()) {
      missing.push_back(name);
    } else if (it->second->sizes() != tensor.sizes()) {
      misshaped.push_back(name + " (checkpoint " + shape_to_string(detail::shape_of(*it->second)) +
                          ", model " + shape_to_string(detail::shape_of(tensor)) + ")");
    }
  }
  for (const auto& [name, tensor] : checkpoint.tensors) {
    if (target_names.count(name) == 0) unexpected.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty()) {
    std::string problem = "checkpoint does not fit the architecture " + architecture_path;
    if (!checkpoint.prefix.empty()) {
      problem += " (weights read from its '" + checkpoint.prefix + "' entry)";
    }
    if (!missing.empty()) {
      problem += "; " + std::to_string(missing.size()) + " missing: " + list_names(missing);
    }
    if (!unexpected.empty()) {
      problem +=
          "; " + std::to_string(unexpected.size()) + " unexpected: " + list_names(unexpected);
    }
    if (!misshaped.empty()) {
      problem += "; " + std::to_string(misshaped.size()) + " mis-shaped: " + list_names(misshaped);
    }
    throw InputError(checkpoint_path, problem);
  }

  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : targets) {
    // copy_ converts dtypes (float16 checkpoint -> float32 parameter) and devices.
    torch::Tensor target = tensor;
    target.copy_(*by_name.at(name));
  }
}

torch::Device parse_device(const std::string& text) {
  const std::string expected = "cpu, cuda or cuda:N";
  std::optional<torch::Device> device;
  try {
    device.emplace(text);
  } catch (const c10::Error&) {
    throw InputError("", "unknown device '" + text + "'").expected(expected);
  }
  if (device->is_cpu()) return *device;
  if (!device->is_cuda()) {
    throw InputError("", "unsupported device '" + text + "'").expected(expected);
  }
  if (!torch::cuda::is_available()) {
    throw InputError("", "device '" + text + "' requested but CUDA is not available")
        .expected("a LibTorch build with CUDA and a visible GPU")
        .found(torch::cuda::device_count() == 0 ? "no GPU" : "an unusable GPU");
  }
  const auto count = static_cast<std::int64_t>(torch::cuda::device_count());
  if (device->has_index() && device->index() >= count) {
    throw InputError("", "no GPU " + std::to_string(device->index()))
        .expected("an index below " + std::to_string(count));
  }
  return *device;
}

// What the first weight says about the inputs, for errors: "N x 1 x H x W images" for a
// convolution, "N x 784 features" for a linear layer; "" when nothing can be said.
std::string expected_input(const torch::jit::Module& module) {
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    const auto& w = p.value;
    if (w.dim() == 4) {
      return "N x " + std::to_string(w.size(1)) + " x H x W images (first weight '" + p.name +
             "' is " + shape_to_string(detail::shape_of(w)) + ")";
    }
    if (w.dim() == 2) {
      return "N x " + std::to_string(w.size(1)) + " features (first weight '" + p.name + "' is " +
             shape_to_string(detail::shape_of(w)) + ")";
    }
    return "";
  }
  return "";
}

torch::ScalarType input_dtype(const torch::jit::Module& module) {
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    if (p.value.is_floating_point()) return p.value.scalar_type();
  }
  return torch::kFloat32;
}

// The pickle torch.save writes for an OrderedDict of tensors (protocol 2), written by hand:
// LibTorch's pickle_save wraps a c10::Dict in torch.jit._pickle.restore_type_tag, which
// torch.load understands but which is no state dict for readers that expect what Python
// writes (core/io/torch_archive.h among them).
class StateDictPickle {
 public:
  std::string finish(const NamedTensors& tensors) {
    op(0x80);
    op(2);  // PROTO 2
    global("collections", "OrderedDict");
    op(')');  // EMPTY_TUPLE
    op('R');  // REDUCE
    op('(');  // MARK
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      unicode(tensors[i].first);
      tensor(tensors[i].second, std::to_string(i));
    }
    op('u');  // SETITEMS
    op('.');  // STOP
    return std::move(out_);
  }

 private:
  void op(int code) { out_ += static_cast<char>(code); }

  void global(const std::string& module, const std::string& name) {
    out_ += 'c' + module + '\n' + name + '\n';
  }

  void unicode(const std::string& s) {
    op('X');  // BINUNICODE: 4-byte little-endian length
    const auto n = static_cast<std::uint32_t>(s.size());
    for (int i = 0; i < 4; ++i) out_ += static_cast<char>((n >> (8 * i)) & 0xffu);
    out_ += s;
  }

  void integer(std::int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');  // BININT1
      out_ += static_cast<char>(v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');  // BININT: 4-byte little-endian signed
      const auto u = static_cast<std::uint32_t>(static_cast<std::int32_t>(v));
      for (int i = 0; i < 4; ++i) out_ += static_cast<char>((u >> (8 * i)) & 0xffu);
    } else {
      op(0x8a);  // LONG1: 8-byte little-endian two's complement
      op(8);
      const auto u = static_cast<std::uint64_t>(v);
      for (int i = 0; i < 8; ++i) out_ += static_cast<char>((u >> (8 * i)) & 0xffu);
    }
  }

  void int_tuple(c10::IntArrayRef values) {
    op('(');
    for (const std::int64_t v : values) integer(v);
    op('t');  // TUPLE
  }

  static const char* storage_type(torch::ScalarType type) {
    switch (type) {
      case torch::kFloat32:
        return "FloatStorage";
      case torch::kFloat64:
        return "DoubleStorage";
      case torch::kFloat16:
        return "HalfStorage";
      case torch::kBFloat16:
        return "BFloat16Storage";
      case torch::kInt64:
        return "LongStorage";
      case torch::kInt32:
        return "IntStorage";
      case torch::kInt16:
        return "ShortStorage";
      case torch::kInt8:
        return "CharStorage";
      case torch::kUInt8:
        return "ByteStorage";
      case torch::kBool:
        return "BoolStorage";
      default:
        throw InputError("", "cannot save a tensor of this dtype in a state dict")
            .found(c10::toString(type));
    }
  }

  // torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict()), the storage
  // a persistent id ("storage", torch.<Type>Storage, key, "cpu", numel) of entry data/<key>.
  void tensor(const torch::Tensor& t, const std::string& key) {
    global("torch._utils", "_rebuild_tensor_v2");
    op('(');
    op('(');
    unicode("storage");
    global("torch", storage_type(t.scalar_type()));
    unicode(key);
    unicode("cpu");
    integer(t.numel());
    op('t');
    op('Q');  // BINPERSID
    integer(0);
    int_tuple(t.sizes());
    int_tuple(t.strides());
    op(0x89);  // NEWFALSE: requires_grad
    global("collections", "OrderedDict");
    op(')');
    op('R');  // backward hooks
    op('t');
    op('R');
  }

  std::string out_;
};

// A torch.save zip archive ("archive/data.pkl", "archive/data/<i>", "archive/version") holding
// an OrderedDict name -> tensor, in the given order.
std::vector<char> state_dict_archive(const NamedTensors& state) {
  NamedTensors cpu;
  cpu.reserve(state.size());
  for (const auto& [name, tensor] : state) {
    // A fresh contiguous copy: its storage holds exactly its elements, no more.
    cpu.emplace_back(name, tensor.detach().to(torch::kCPU).contiguous().clone());
  }
  const std::string pickle = StateDictPickle().finish(cpu);
  std::vector<char> out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, std::size_t size) {
    const char* p = static_cast<const char*>(data);
    out.insert(out.end(), p, p + size);
    return size;
  });
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    const torch::Tensor& t = cpu[i].second;
    writer.writeRecord("data/" + std::to_string(i), t.data_ptr(),
                       static_cast<std::size_t>(t.numel()) * t.element_size());
  }
  writer.writeEndOfFile();
  return out;
}

}  // namespace

TorchModel::TorchModel(std::unique_ptr<detail::TorchModelImpl> impl) : impl_(std::move(impl)) {}
TorchModel::TorchModel(TorchModel&&) noexcept = default;
TorchModel& TorchModel::operator=(TorchModel&&) noexcept = default;
TorchModel::~TorchModel() = default;

TorchModel TorchModel::load(const std::string& architecture, const std::string& checkpoint,
                            const std::string& device) {
  if (architecture.empty() && checkpoint.empty()) {
    throw InputError("", "no model given").expected("a TorchScript architecture and/or checkpoint");
  }
  auto impl = std::make_unique<detail::TorchModelImpl>();
  impl->architecture = architecture;
  impl->checkpoint = checkpoint;
  impl->device = parse_device(device);
  if (architecture.empty()) {
    impl->module = load_script(checkpoint, /*without_architecture=*/true);
  } else {
    impl->module = load_script(architecture, /*without_architecture=*/false);
    if (!checkpoint.empty()) {
      copy_checkpoint(impl->module, read_checkpoint(checkpoint), checkpoint, architecture);
    }
  }
  impl->module.eval();
  try {
    impl->module.to(impl->device);
  } catch (const c10::Error& e) {
    throw InputError(impl->model_file(),
                     "cannot move the model to " + device + ": " + summarise(e));
  }
  return TorchModel(std::move(impl));
}

NdArray TorchModel::logits(const NdArray& inputs, std::int64_t batch_size) const {
  MD_ASSERT(batch_size > 0);
  const std::string& file = impl_->model_file();
  if (inputs.ndim() < 1 || !dtype_is_floating(inputs.dtype())) {
    throw InputError(file, "model inputs must be a floating-point array with a batch dimension")
        .found(dtype_name(inputs.dtype()) + " " + shape_to_string(inputs.shape()));
  }
  const std::int64_t n = inputs.dim(0);
  if (n == 0) return NdArray::allocate(DType::kFloat32, {0, 0});
  const NdArray x = inputs.to_float32();
  std::vector<std::int64_t> batch_shape = x.shape();
  const std::size_t row_bytes = x.nbytes() / static_cast<std::size_t>(n);
  const torch::ScalarType dtype = input_dtype(impl_->module);

  torch::NoGradGuard no_grad;
  NdArray out;
  for (std::int64_t begin = 0; begin < n; begin += batch_size) {
    const std::int64_t count = std::min(batch_size, n - begin);
    batch_shape[0] = count;
    // A copy per batch: the module may modify its input in place (ReLU(inplace=True)).
    torch::Tensor batch = torch::empty(batch_shape, torch::kFloat32);
    std::memcpy(batch.data_ptr(), x.data() + static_cast<std::size_t>(begin) * row_bytes,
                static_cast<std::size_t>(count) * row_bytes);
    torch::IValue result;
    try {
      result = impl_->module.forward({batch.to(impl_->device, dtype)});
    } catch (const std::exception& e) {  // c10::Error or the interpreter's runtime_error
      InputError error(file, "the model cannot take inputs of shape " +
                                 shape_to_string(inputs.shape()) + ": " + summarise(e));
      const std::string hint = expected_input(impl_->module);
      if (!hint.empty()) error.expected(hint);
      throw error;
    }
    if (!result.isTensor() || result.toTensor().dim() != 2 || result.toTensor().size(0) != count) {
      const std::string found =
          result.isTensor()
              ? "a tensor of shape " + shape_to_string(detail::shape_of(result.toTensor()))
              : "a " + std::string(result.tagKind());
      throw InputError(file, "the model's output is not one row of logits per input")
          .expected("a " + std::to_string(count) + " x K tensor")
          .found(found);
    }
    const torch::Tensor logits = result.toTensor().to(torch::kCPU, torch::kFloat32).contiguous();
    if (begin == 0) out = NdArray::allocate(DType::kFloat32, {n, logits.size(1)});
    const auto k = static_cast<std::size_t>(logits.size(1));
    std::memcpy(out.mutable_data_as<float>() + static_cast<std::size_t>(begin) * k,
                logits.data_ptr<float>(), static_cast<std::size_t>(count) * k * sizeof(float));
  }
  return out;
}

std::vector<std::pair<std::string, std::vector<std::int64_t>>> TorchModel::parameter_shapes()
    const {
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> out;
  for (const auto& p : impl_->module.named_parameters(/*recurse=*/true)) {
    out.emplace_back(p.name, detail::shape_of(p.value));
  }
  return out;
}

std::int64_t TorchModel::num_parameters() const {
  std::int64_t total = 0;
  for (const auto& p : impl_->module.parameters(/*recurse=*/true)) total += p.numel();
  return total;
}

std::string TorchModel::describe() const {
  std::string files = impl_->architecture.empty() ? impl_->checkpoint : impl_->architecture;
  if (!impl_->architecture.empty() && !impl_->checkpoint.empty())
    files += " + " + impl_->checkpoint;
  return files + ": " + with_thousands(num_parameters()) + " parameters in " +
         std::to_string(parameter_shapes().size()) + " tensors, " + device();
}

const std::string& TorchModel::architecture_path() const {
  return impl_->architecture;
}
const std::string& TorchModel::checkpoint_path() const {
  return impl_->checkpoint;
}
std::string TorchModel::device() const {
  return impl_->device.str();
}

void TorchModel::save_state_dict(const TorchModel& model, const std::string& path) {
  const std::vector<char> bytes = state_dict_archive(module_state(model.impl().module));
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.close();
    if (!f) {
      const std::string reason = std::strerror(errno);
      std::remove(tmp.c_str());
      throw InputError(path, "cannot write the state dict: " + reason);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(tmp.c_str());
    throw InputError(path, "cannot write the state dict: " + reason);
  }
}

void set_torch_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
}

int torch_threads() {
  return at::get_num_threads();
}

}  // namespace modeldiff::core
