// Internal (includes LibTorch): a TorchScript nn.Sequential seen as a chain of layers, and
// batched per-example gradients of the margin for its Linear and Conv2d layers.
//
// Per-example gradients come from one forward and one backward pass per batch: the input a_i
// of every trainable layer is kept and the gradient delta_i of the summed margins with
// respect to the layer's output is taken by autograd. Because every margin f_i depends only on
// example i (eval mode), delta_i = d f_i / d output_i, and the per-example weight gradient is
//   Linear:  delta_i a_i^T                          (out x in), bias delta_i
//   Conv2d:  Delta_i U_i^T, U_i = unfold(a_i)        (C_out x C_in k k), bias sum_l Delta_i[:, l]
// (Delta_i: C_out x L output gradients, U_i: C_in k k x L input patches, L output positions).
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace modeldiff::core::detail {

enum class LayerKind { kLinear, kConv2d, kPassThrough };

struct Layer {
  std::string name;  // dotted path in the model, e.g. "features.3"
  std::string type;  // short type name, e.g. "Conv2d"
  LayerKind kind = LayerKind::kPassThrough;
  torch::jit::Module module;
  torch::Tensor weight, bias;  // trainable layers; bias may be undefined
  std::vector<std::int64_t> kernel, stride, padding, dilation;  // Conv2d
  // Rows of the per-example gradient matrix of this layer: out features (Linear) or output
  // channels (Conv2d); columns: inputs (in, or C_in k k) plus one for the bias if any.
  std::int64_t grad_rows() const;
  std::int64_t grad_cols() const;
};

// The layers of a TorchScript model whose top level is an nn.Sequential (nested Sequentials
// are flattened). Throws InputError naming `model_name` and the offending layer when a layer
// is of a type TRAK cannot follow or a trainable layer has unsupported settings (groups,
// non-zero padding modes). Parameters of pass-through layers are reported in `frozen`.
// Puts the model in eval mode.
std::vector<Layer> sequential_layers(torch::jit::Module& model, const std::string& model_name,
                                     std::vector<std::string>* frozen);

// Runs the chain on x (B x ...) and checks once against model.forward (an InputError when a
// custom forward() does something else than the chain of its children).
void verify_chain(torch::jit::Module& model, const std::vector<Layer>& layers,
                  const torch::Tensor& x, const std::string& model_name);

// Margin f_i = logit_{y_i} - logsumexp_{j != y_i} logit_j for logits B x K, labels B (int64).
torch::Tensor margins(const torch::Tensor& logits, const torch::Tensor& labels);

struct CapturedLayer {
  torch::Tensor input;        // a: B x in, or B x C_in x H x W
  torch::Tensor output_grad;  // delta: B x out, or B x C_out x H' x W'
};

struct MarginGradients {
  torch::Tensor logits;               // B x K
  std::vector<CapturedLayer> layers;  // one per trainable layer, in chain order
};

// One forward + one backward pass: logits and, per trainable layer, its inputs and the
// gradients of the summed margins with respect to its outputs.
MarginGradients margin_gradients(const std::vector<Layer>& layers, const torch::Tensor& x,
                                 const torch::Tensor& labels);

// Per-example gradients of one trainable layer: the weight part as B x rows x (cols - 1 if
// biased), the bias part as B x rows, and both as B x rows x cols (bias as last column).
torch::Tensor weight_gradient(const Layer& layer, const CapturedLayer& captured);
torch::Tensor bias_gradient(const Layer& layer, const CapturedLayer& captured);
torch::Tensor layer_gradient(const Layer& layer, const CapturedLayer& captured);

// All per-example gradients flattened in parameter order (each layer's weight, then bias):
// B x p.
torch::Tensor flat_gradients(const std::vector<Layer>& layers, const MarginGradients& g);

}  // namespace modeldiff::core::detail
