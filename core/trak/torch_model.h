// A trained classifier, loaded with LibTorch: one "algorithm checkpoint" of the ModelDiff
// workflow.
//
// A model comes from either
//   - a TorchScript architecture (Python: torch.jit.script(model).save("arch.pt")) plus a
//     checkpoint holding its weights: a torch.save'd state dict (OrderedDict, possibly nested
//     as {"model": sd, "optimizer": ..., "epoch": 3} / "state_dict" / "model_state_dict", and
//     possibly with DataParallel's "module." prefix), a safetensors file, or another TorchScript
//     file of the same architecture; or
//   - a single TorchScript file that already holds the trained weights (architecture "").
// Checkpoints are read with the project's own readers (core/io/torch_archive.h,
// core/io/safetensors.h), not with LibTorch's unpickler, which refuses OrderedDict.
//
// This header includes no LibTorch header so that the CLI and GUI can include it cheaply; the
// LibTorch objects live in detail::TorchModelImpl (core/trak/detail/torch_model_impl.h), which
// code inside core/trak uses to run forward/backward passes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/base/ndarray.h"

namespace modeldiff::core {

namespace detail {
struct TorchModelImpl;
}

class TorchModel {
 public:
  // Loads `architecture` (a TorchScript archive) and copies the weights of `checkpoint` into it.
  // With `architecture` empty, `checkpoint` must be a TorchScript file with trained weights.
  // With `checkpoint` empty, the architecture's own (initial) weights are kept.
  //
  // Every parameter and buffer of the module (recursive names such as "features.0.weight",
  // "bn.running_mean", "bn.num_batches_tracked") must be in the checkpoint with the same shape,
  // and the checkpoint may hold nothing else; otherwise an InputError names the checkpoint and
  // lists the missing, unexpected and mis-shaped names (the latter with both shapes). Values are
  // converted to the module's dtypes (a float16 checkpoint loads into float32 parameters).
  // The model is put in eval mode (BatchNorm uses its running statistics) on `device`
  // ("cpu", "cuda", "cuda:1", ...). Throws InputError for unreadable or mismatched files and for
  // a device that is not available.
  static TorchModel load(const std::string& architecture, const std::string& checkpoint,
                         const std::string& device = "cpu");

  TorchModel(TorchModel&&) noexcept;
  TorchModel& operator=(TorchModel&&) noexcept;
  ~TorchModel();

  // Logits in eval mode without gradients. `inputs`: B x C x H x W images (or B x D features,
  // whatever the model takes), any floating dtype, converted to float32; evaluated in batches of
  // `batch_size`. Returns B x K float32 (row = example, column = class). An input the model
  // cannot take (wrong shape) raises InputError naming the model file and the input shape.
  NdArray logits(const NdArray& inputs, std::int64_t batch_size = 512) const;

  // Trainable parameters in module order (the order of gradients in TRAK) with their shapes.
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> parameter_shapes() const;
  // Total number of trainable parameter elements (p in ALGORITHM.md).
  std::int64_t num_parameters() const;
  // One line for logs and the GUI: "arch.pt + ckpt.pt: 20,490 parameters in 6 tensors, cpu".
  std::string describe() const;

  const std::string& architecture_path() const;
  const std::string& checkpoint_path() const;
  std::string device() const;

  // Writes every parameter and buffer (module order, CPU, the module's dtypes) as a torch.save
  // zip archive holding a dict name -> tensor: Python's torch.load and read_torch_file both read
  // it, and TorchModel::load takes it back as a checkpoint. Atomic (temporary file + rename).
  // Throws InputError when the file cannot be written.
  static void save_state_dict(const TorchModel& model, const std::string& path);

  // For code in core/trak that runs the module (forward/backward); see detail/torch_model_impl.h.
  detail::TorchModelImpl& impl() { return *impl_; }
  const detail::TorchModelImpl& impl() const { return *impl_; }

 private:
  explicit TorchModel(std::unique_ptr<detail::TorchModelImpl> impl);

  std::unique_ptr<detail::TorchModelImpl> impl_;
};

// LibTorch's intra-op thread count (Debian's LibTorch starts with one). n <= 0: all cores.
// Independent of set_compute_threads (core/base/threads.h), which covers OpenMP and the BLAS.
void set_torch_threads(int n);
int torch_threads();

}  // namespace modeldiff::core
