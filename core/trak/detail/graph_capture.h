// Internal (includes LibTorch): batched per-example gradients of the margin for any
// TorchScript classifier (scripted or traced), by capturing the ops that consume parameters.
//
// The module's forward graph is copied and inlined, `training` becomes the constant False,
// constant propagation, dead-code elimination and mutation removal run (so relu_/add_ become
// out of place). For every op that consumes a trainable parameter (resolved through its
// prim::GetAttr chain from self and ClassType::is_parameter), its activation input and its
// output y are returned as extra outputs (an output still written in place later gets a
// probe instead: y -> y + eps, eps a zero graph input). One forward and one backward pass per
// batch give, per op, its input a_i and delta_i = d f_i / d y_i (in eval mode margin f_i
// depends only on example i, so the gradient of sum_i f_i with respect to y is delta_i per
// example). Per-example gradients then follow
// in closed form per op type (linear, matmul, conv, batch_norm, layer_norm, embedding,
// elementwise add/sub/mul); contributions of a parameter used several times are summed.
//
// The graph runs with the SIMPLE executor: from its second call the profiling executor fuses
// ops, and gradients with respect to intermediate values silently become zero (the tests run
// every model three times).
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/trak/param_selection.h"

namespace torch::jit {
struct GraphFunction;
}

namespace modeldiff::core::detail {

// Margin f_i = logit_{y_i} - logsumexp_{j != y_i} logit_j for logits B x K, labels B (int64).
torch::Tensor margins(const torch::Tensor& logits, const torch::Tensor& labels);

enum class OpKind { kLinear, kMatmul, kConv, kBatchNorm, kLayerNorm, kEmbedding, kAdd, kMul };

// A parameter of the model, in named_parameters() order (tied tensors once).
struct GraphParameter {
  std::string name;  // dotted path, e.g. "layer1.0.conv1.weight"
  torch::Tensor tensor;
  bool attributed = false;  // trainable (requires_grad), selected and used by forward
  // Matrix form of the gradient: rows x cols (linear, conv and embedding weights, matmul
  // operands); 0 when the parameter has none.
  std::int64_t rows = 0, cols = 0;
};

// One op of the forward graph that consumes attributed parameters.
struct ParamOp {
  OpKind kind = OpKind::kLinear;
  std::string op;   // node kind, e.g. "aten::conv2d"
  int weight = -1;  // parameter index (the parameter operand of add/sub/mul), -1 if none
  int bias = -1;    // parameter index of the bias, -1 if none or not attributed
  // conv: explicit zero padding {left, right, top, bottom} then a convolution without padding
  std::vector<std::int64_t> kernel, stride, dilation, pad;
  std::int64_t groups = 1;
  torch::Tensor running_mean, running_var;  // batch_norm (eval)
  double eps = 0;                           // batch_norm, layer_norm
  std::int64_t normalized_dims = 0;         // layer_norm: trailing dims normalised
  std::int64_t padding_idx = -1;            // embedding
  double alpha = 1;                         // add/sub: y = x + alpha * parameter
  bool probed = false;  // output written in place later: differentiated through a probe
};

// What one batch's forward and backward pass captured, per ParamOp.
struct Captured {
  torch::Tensor logits;               // B x K
  std::vector<torch::Tensor> inputs;  // the op's activation input (embedding: the indices;
                                      // mul: the other operand; add: undefined)
  std::vector<torch::Tensor> deltas;  // d sum_i f_i / d output, shaped like the output
};

// One op's contribution to one parameter's per-example gradient. Either `direct`
// (B x numel), or the matrix form sum_t L_t R_t^T of the rows x cols gradient: `left`
// B x rows x T (or `left_index` B x T of row indices, a one-hot left side: embedding),
// `right` B x cols x T (T: positions or tokens; 1 for a linear layer on vectors); or `full`
// B x rows x cols (grouped convolutions). For a convolution the right side is implicit:
// U = im2col(conv_input) with the settings of `conv` (B x C_in k k x L), never formed when
// projected.
struct Contribution {
  int param = -1;
  torch::Tensor direct, left, left_index, right, full;
  torch::Tensor conv_input;
  const ParamOp* conv = nullptr;
};

struct ProbeShape {
  std::vector<std::int64_t> sizes;
  torch::TensorOptions options;
};

// Not thread-safe: one capture at a time per object (the probes' shapes are cached).
class GraphGradients {
 public:
  // Refuses (InputError naming `model_name`, the parameter and the op) what it cannot follow:
  // a parameter used inside prim::If / prim::Loop or by an unsupported op, batch_norm in
  // training mode, a module without trainable parameters (e.g. torch.jit.freeze'd).
  // Puts the model in eval mode.
  // `probe_every_output` differentiates every op output through a probe (for tests: the
  // probes are otherwise used only where an output is written in place).
  // `selection` chooses the attributed parameters (default: every trainable one); a pattern
  // matching none is an InputError.
  GraphGradients(torch::jit::Module model, std::string model_name,
                 const ParamSelection& selection = {}, bool probe_every_output = false);
  ~GraphGradients();
  GraphGradients(const GraphGradients&) = delete;
  GraphGradients& operator=(const GraphGradients&) = delete;

  const std::string& model_name() const { return name_; }
  const std::vector<GraphParameter>& parameters() const { return params_; }
  const std::vector<ParamOp>& ops() const { return ops_; }
  // Number of entries of the attributed parameters.
  std::int64_t num_attributed() const;
  // Names of the parameters left out (not trainable, not selected, or not used by forward).
  std::vector<std::string> left_out() const;
  // One line for logs: how many entries and tensors are attributed, which are left out.
  std::string describe() const;

  // One forward and one backward pass on x (B x ...) with labels (B, int64).
  Captured capture(const torch::Tensor& x, const torch::Tensor& labels) const;
  // The contributions of op `k` of a capture.
  std::vector<Contribution> contributions(std::size_t k, const Captured& c) const;
  // Per-example gradients of every attributed parameter, B x (parameter shape), in
  // parameter order (undefined for parameters not attributed).
  std::vector<torch::Tensor> per_example(const Captured& c) const;
  // All of them flattened in parameter order: B x num_attributed().
  torch::Tensor flat(const Captured& c) const;

 private:
  const std::vector<ProbeShape>& output_shapes(const torch::Tensor& x) const;

  torch::jit::Module model_;
  std::string name_;
  std::vector<GraphParameter> params_;
  std::vector<ParamOp> ops_;
  std::shared_ptr<torch::jit::GraphFunction> fn_;
  std::int64_t num_probes_ = 0;
  // Output shapes of the probed ops per input shape (found by one run without gradients).
  mutable std::map<std::vector<std::int64_t>, std::vector<ProbeShape>> shapes_;
};

// A per-example gradient assembled from a Contribution (B x rows x cols for the matrix forms,
// B x numel for direct ones).
torch::Tensor contribution_gradient(const Contribution& c, const GraphParameter& p);

}  // namespace modeldiff::core::detail
