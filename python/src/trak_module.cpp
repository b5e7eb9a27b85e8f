// _trak: the LibTorch half of the Python package `modeldiff` (python/modeldiff/): TRAK features
// of one checkpoint from batches handed over as the Python DataLoader yields them, and the
// ensemble of checkpoints into T x N scores (row = target example, column = training example),
// with the core's machinery (detail::CheckpointFeaturizer, TrakEnsemble), so the numbers are
// those of `modeldiff trak`.
//
// A model crosses as the bytes of a TorchScript archive (torch.jit.save into a BytesIO) with
// the checkpoint's weights, loaded with torch::jit::load; batches cross as numpy float32 /
// int64 arrays viewed with torch::from_blob. Nothing here depends on libtorch_python.
// Featurization runs without the GIL; Ctrl-C cancels it (KeyboardInterrupt).
#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/attribution/trak_ensemble.h"
#include "core/base/error.h"
#include "core/base/error_report.h"
#include "core/base/ndarray.h"
#include "core/trak/detail/featurizer.h"
#include "core/trak/param_selection.h"
#include "core/trak/trak_settings.h"
#include "interrupt_check.h"

namespace py = pybind11;
namespace core = modeldiff::core;

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using LabelArray = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

std::string shape_text(const py::array& a) {
  std::string s;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? " x " : "") + std::to_string(a.shape(d));
  return s;
}

core::TrakSettings make_settings(int proj_dim, std::uint64_t seed, const std::string& projection,
                                 double lambda, bool out_to_loss, int batch_size,
                                 const std::string& device, const std::string& params,
                                 bool skip_normalization) {
  core::TrakSettings s;
  if (proj_dim < 1)
    throw core::InputError("", "proj_dim must be positive").found(std::to_string(proj_dim));
  if (batch_size < 1)
    throw core::InputError("", "batch_size must be positive").found(std::to_string(batch_size));
  if (projection != "structured" && projection != "dense")
    throw core::InputError("", "unknown projection '" + projection + "'")
        .expected("'structured' or 'dense'");
  s.proj_dim = proj_dim;
  s.seed = seed;
  s.projection =
      projection == "dense" ? core::ProjectionKind::kDense : core::ProjectionKind::kStructured;
  s.lambda = lambda;
  s.out_to_loss = out_to_loss;
  s.batch_size = batch_size;
  s.device = device;
  if (!params.empty() || skip_normalization)
    s.params = core::parse_param_patterns(params, skip_normalization);
  return s;
}

// The features of one checkpoint, from training and target batches in the order the loaders
// yield them. Python hands over every training batch, then every target batch.
class StreamingFeaturizer {
 public:
  // model: a TorchScript archive's bytes (the checkpoint's weights in it); name: how errors
  // and logs name it ("modelA checkpoint 2 (ckpt_2.pt)"); checkpoint: its position among the
  // algorithm's checkpoints (seeds its projection, as in `modeldiff trak`).
  StreamingFeaturizer(const py::bytes& model, std::string name, const core::TrakSettings& settings,
                      int checkpoint)
      : name_(std::move(name)) {
    std::istringstream stream(std::string(model), std::ios::binary);
    torch::jit::Module module;
    try {
      device_ = torch::Device(settings.device);
      module = torch::jit::load(stream, device_);
    } catch (const c10::Error& e) {
      throw core::InputError(
          name_, "cannot be loaded as a TorchScript model on device '" + settings.device + "'")
          .found(core::torchscript_error_cause(e.what()));
    }
    module.eval();
    module_ = module;
    featurizer_.emplace(module, name_, settings, checkpoint, settings.params);
  }

  // inputs: B x ... float32 (what the model takes), labels: B int64. `train`: a training batch
  // (else a target batch; every training batch comes first).
  void add(const FloatArray& inputs, const LabelArray& labels, bool train) {
    if (inputs.ndim() < 1 || labels.ndim() != 1 || labels.shape(0) != inputs.shape(0))
      throw core::InputError("", "a batch's labels do not match its inputs")
          .expected("inputs B x ... and labels of length B")
          .found("inputs " + shape_text(inputs) + ", labels " + shape_text(labels));
    if (!train) in_targets_ = true;
    if (train && in_targets_)
      throw core::InputError(name_, "a training batch came after the target batches");
    std::vector<std::int64_t> shape(inputs.shape(), inputs.shape() + inputs.ndim());
    // Views of the arrays (no copy); the featurizer moves them to its device batch by batch.
    const torch::Tensor x =
        torch::from_blob(const_cast<float*>(inputs.data()), shape, torch::kFloat32);
    const torch::Tensor y =
        torch::from_blob(const_cast<std::int64_t*>(labels.data()), {labels.shape(0)}, torch::kLong);
    if (x.size(0) == 0) return;
    check_fits(x, y, train);

    modeldiff::python::InterruptCheck interrupt;
    bool cancelled = false;
    {
      py::gil_scoped_release release;
      try {
        core::detail::Features f = featurizer_->run(x, y, interrupt);
        (train ? train_ : target_).push_back(f.features);
        if (train) {
          out_to_loss_.push_back(f.out_to_loss);
        } else {
          correct_ += f.logits.argmax(1).cpu().eq(y).sum().item<std::int64_t>();
        }
      } catch (const core::Cancelled&) {
        cancelled = true;
      }
    }
    if (cancelled) interrupt.rethrow();
  }

  // {'train_features': N x k, 'target_features': T x k, 'out_to_loss': N (float32 numpy),
  //  'target_accuracy': float, 'attributed': str, 'num_parameters': int}
  py::dict finish() {
    if (train_.empty() || target_.empty())
      throw core::InputError(name_, train_.empty() ? "no training examples were featurized"
                                                   : "no target examples were featurized");
    py::dict d;
    const torch::Tensor targets = torch::cat(target_).contiguous();
    d["train_features"] = to_numpy(torch::cat(train_));
    d["target_features"] = to_numpy(targets);
    d["out_to_loss"] = to_numpy(torch::cat(out_to_loss_));
    d["target_accuracy"] = static_cast<double>(correct_) / static_cast<double>(targets.size(0));
    d["attributed"] = featurizer_->graph().describe();
    d["num_parameters"] = featurizer_->projector().num_params();
    return d;
  }

 private:
  static py::array_t<float> to_numpy(const torch::Tensor& t) {
    const torch::Tensor c = t.to(torch::kCPU, torch::kFloat32).contiguous();
    std::vector<py::ssize_t> shape(c.sizes().begin(), c.sizes().end());
    py::array_t<float> out(shape);
    std::memcpy(out.mutable_data(), c.data_ptr<float>(), c.numel() * sizeof(float));
    return out;
  }

  // Before any gradient: a model that cannot take the inputs (tried on the first example of
  // each loader; a loader's examples all have one shape), or labels beyond its outputs, are an
  // InputError naming the model and the batch, not a LibTorch error from inside the gradient
  // code.
  void check_fits(const torch::Tensor& x, const torch::Tensor& y, bool train) {
    const char* which = train ? "training" : "target";
    bool& tried = train ? tried_train_ : tried_target_;
    if (!tried) {
      torch::NoGradGuard no_grad;
      torch::Tensor out;
      try {
        out = module_.forward({x.narrow(0, 0, 1).to(device_)}).toTensor();
      } catch (const std::exception& e) {  // c10::Error, or the interpreter's JITException
        throw core::InputError(name_, std::string("cannot take the ") + which + " loader's inputs")
            .found("a batch of shape " + shape_text_of(x) + ": " +
                   core::torchscript_error_cause(e.what()));
      }
      if (out.dim() != 2)
        throw core::InputError(name_, "the model's output is not a batch of logits")
            .expected("1 x K for one example")
            .found(shape_text_of(out));
      if (classes_ >= 0 && out.size(1) != classes_)
        throw core::InputError(name_, "gives another number of classes for the target inputs")
            .expected(std::to_string(classes_) + " (as for the training inputs)")
            .found(std::to_string(out.size(1)));
      classes_ = out.size(1);
      tried = true;
    }
    const auto low = y.min().item<std::int64_t>(), high = y.max().item<std::int64_t>();
    if (low < 0 || high >= classes_)
      throw core::InputError(name_,
                             std::string("a ") + which + " label is not one of the model's classes")
          .expected("labels 0 to " + std::to_string(classes_ - 1) + " (the model has " +
                    std::to_string(classes_) + " outputs)")
          .found(std::to_string(low < 0 ? low : high));
  }

  static std::string shape_text_of(const torch::Tensor& t) {
    std::string s;
    for (std::int64_t d = 0; d < t.dim(); ++d) s += (d ? " x " : "") + std::to_string(t.size(d));
    return s;
  }

  std::string name_;
  torch::Device device_{torch::kCPU};
  torch::jit::Module module_;
  std::optional<core::detail::CheckpointFeaturizer> featurizer_;
  std::int64_t classes_ = -1;
  bool tried_train_ = false, tried_target_ = false;
  bool in_targets_ = false;
  std::vector<torch::Tensor> train_, target_, out_to_loss_;
  std::int64_t correct_ = 0;
};

// The TRAK ensemble over checkpoints (core/attribution/trak_ensemble.h), T x N.
class Ensemble {
 public:
  Ensemble(std::int64_t num_targets, std::int64_t num_train, double lambda)
      : ensemble_(num_targets, num_train, lambda), t_(num_targets), n_(num_train) {}

  // train_features N x k, target_features T x k, out_to_loss N; context names the checkpoint.
  // Returns how many kernel directions were left out (pseudo-inverse).
  std::int64_t add(const Eigen::Ref<const core::RowMatrixF>& train_features,
                   const Eigen::Ref<const core::RowMatrixF>& target_features,
                   const Eigen::Ref<const Eigen::VectorXf>& out_to_loss,
                   const std::string& context) {
    if (train_features.rows() != n_ || target_features.rows() != t_ || out_to_loss.size() != n_ ||
        target_features.cols() != train_features.cols())
      throw core::InputError(context, "features do not match the data")
          .expected(std::to_string(n_) + " x k training and " + std::to_string(t_) +
                    " x k target features, " + std::to_string(n_) + " out-to-loss weights")
          .found(std::to_string(train_features.rows()) + " x " +
                 std::to_string(train_features.cols()) + ", " +
                 std::to_string(target_features.rows()) + " x " +
                 std::to_string(target_features.cols()) + ", " +
                 std::to_string(out_to_loss.size()));
    const std::int64_t before = ensemble_.dropped_columns() + ensemble_.null_directions();
    {
      py::gil_scoped_release release;
      ensemble_.add_checkpoint(train_features, target_features, out_to_loss, context);
    }
    return ensemble_.dropped_columns() + ensemble_.null_directions() - before;
  }

  // T x N float32 scores (row = target example, column = training example).
  py::array_t<float> scores(bool use_out_to_loss) const {
    core::NdArray s;
    {
      py::gil_scoped_release release;
      s = ensemble_.scores(use_out_to_loss);
    }
    py::array_t<float> out({s.dim(0), s.dim(1)});
    std::memcpy(out.mutable_data(), s.data(), s.nbytes());
    return out;
  }

  int checkpoints() const { return ensemble_.num_checkpoints(); }

  // Before the first add: record the sums of the blocks of checkpoints that `cuts` (block_cuts)
  // delimit, for the half ensembles of the significance of directions
  // (TrakEnsemble::record_blocks).
  void record_blocks(std::vector<int> cuts) { ensemble_.record_blocks(std::move(cuts)); }

  // The blocks recorded so far, moved out of the ensemble: ([T x N float32 score sums],
  // [N float64 out-to-loss sums]), one each per block.
  py::tuple take_blocks() {
    const core::TrakEnsemble::BlockSums blocks = ensemble_.take_blocks();
    py::list scores, weights;
    for (const core::NdArray& s : blocks.score_sums) {
      py::array_t<float> a({s.dim(0), s.dim(1)});
      std::memcpy(a.mutable_data(), s.data(), s.nbytes());
      scores.append(a);
    }
    for (const std::vector<double>& q : blocks.out_to_loss) {
      py::array_t<double> a(static_cast<py::ssize_t>(q.size()));
      std::memcpy(a.mutable_data(), q.data(), q.size() * sizeof(double));
      weights.append(a);
    }
    return py::make_tuple(scores, weights);
  }

 private:
  core::TrakEnsemble ensemble_;
  std::int64_t t_, n_;
};

}  // namespace

PYBIND11_MODULE(_trak, m) {
  m.doc() = "ModelDiff Studio's TRAK (LibTorch) for the package modeldiff; not for direct use";
  // core::InputError is modeldiff.InputError (a ValueError) of the module without LibTorch.
  // Kept for the life of the process (never destroyed after the interpreter is gone).
  static const auto* input_error =
      new py::object(py::module_::import("modeldiff._modeldiff").attr("InputError"));
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const core::InputError& e) {
      PyErr_SetString(input_error->ptr(), e.what());
    } catch (const c10::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, core::torchscript_error_cause(e.what()).c_str());
    }
  });

  py::class_<core::TrakSettings>(m, "Settings")
      .def(py::init(&make_settings), py::kw_only(), py::arg("proj_dim") = 2048, py::arg("seed") = 0,
           py::arg("projection") = "structured", py::arg("lambda_") = 0.0,
           py::arg("out_to_loss") = false, py::arg("batch_size") = 256, py::arg("device") = "cpu",
           py::arg("params") = "", py::arg("skip_normalization") = false)
      .def("__str__", [](const core::TrakSettings& s) { return core::describe(s); });

  py::class_<StreamingFeaturizer>(m, "StreamingFeaturizer")
      .def(py::init<const py::bytes&, std::string, const core::TrakSettings&, int>(),
           py::arg("model"), py::arg("name"), py::arg("settings"), py::arg("checkpoint"))
      .def("add", &StreamingFeaturizer::add, py::arg("inputs"), py::arg("labels"), py::arg("train"))
      .def("finish", &StreamingFeaturizer::finish);

  py::class_<Ensemble>(m, "Ensemble")
      .def(py::init<std::int64_t, std::int64_t, double>(), py::arg("num_targets"),
           py::arg("num_train"), py::arg("lambda_"))
      .def("add", &Ensemble::add, py::arg("train_features"), py::arg("target_features"),
           py::arg("out_to_loss"), py::arg("context"))
      .def("scores", &Ensemble::scores, py::arg("out_to_loss"))
      .def("record_blocks", &Ensemble::record_blocks, py::arg("cuts"))
      .def("take_blocks", &Ensemble::take_blocks)
      .def_property_readonly("checkpoints", &Ensemble::checkpoints);
}
