#include "core/trak/detail/sequential.h"

#include <algorithm>
#include <limits>

#include "core/base/error.h"

namespace modeldiff::core::detail {
namespace {

std::string short_type(const torch::jit::Module& m) {
  const std::string q = m.type()->name() ? m.type()->name()->qualifiedName() : std::string("?");
  const auto dot = q.find_last_of('.');
  return dot == std::string::npos ? q : q.substr(dot + 1);
}

// Layers without trainable state whose forward TRAK can call as is in eval mode.
bool is_pass_through(const std::string& type) {
  static const char* kTypes[] = {"ReLU",
                                 "LeakyReLU",
                                 "ELU",
                                 "GELU",
                                 "SiLU",
                                 "Tanh",
                                 "Sigmoid",
                                 "Softplus",
                                 "MaxPool2d",
                                 "AvgPool2d",
                                 "AdaptiveAvgPool2d",
                                 "Flatten",
                                 "Dropout",
                                 "Dropout2d",
                                 "Identity",
                                 "BatchNorm1d",
                                 "BatchNorm2d",
                                 "LayerNorm"};
  return std::find(std::begin(kTypes), std::end(kTypes), type) != std::end(kTypes);
}

std::vector<std::int64_t> int_list(const torch::jit::Module& m, const char* attr) {
  const c10::IValue v = m.attr(attr);
  if (v.isIntList()) return v.toIntVector();
  if (v.isTuple()) {
    std::vector<std::int64_t> out;
    for (const auto& e : v.toTupleRef().elements()) out.push_back(e.toInt());
    return out;
  }
  if (v.isInt()) return {v.toInt(), v.toInt()};
  return {};
}

void collect(const torch::jit::Module& m, const std::string& prefix, const std::string& model_name,
             std::vector<Layer>& out, std::vector<std::string>* frozen) {
  for (const auto& child : m.named_children()) {
    const std::string name = prefix.empty() ? child.name : prefix + "." + child.name;
    const std::string type = short_type(child.value);
    if (type == "Sequential") {
      collect(child.value, name, model_name, out, frozen);
      continue;
    }
    Layer layer;
    layer.name = name;
    layer.type = type;
    layer.module = child.value;
    if (type == "Linear" || type == "Conv2d") {
      layer.kind = type == "Linear" ? LayerKind::kLinear : LayerKind::kConv2d;
      // Outputs must carry autograd history even if the file stored frozen parameters.
      layer.weight = child.value.attr("weight").toTensor();
      layer.weight.requires_grad_(true);
      const c10::IValue bias = child.value.attr("bias");
      if (bias.isTensor()) layer.bias = bias.toTensor().requires_grad_(true);
      if (layer.kind == LayerKind::kConv2d) {
        if (child.value.attr("groups").toInt() != 1)
          throw InputError(model_name, "grouped convolutions are not supported by TRAK here")
              .key(name)
              .found("groups = " + std::to_string(child.value.attr("groups").toInt()));
        if (child.value.attr("padding_mode").toStringRef() != "zeros")
          throw InputError(model_name, "only zero padding is supported by TRAK here")
              .key(name)
              .found(child.value.attr("padding_mode").toStringRef());
        if (!child.value.attr("padding").isTuple() && !child.value.attr("padding").isIntList())
          throw InputError(model_name, "padding must be given as numbers for TRAK")
              .key(name)
              .found("padding = " + child.value.attr("padding").toStringRef());
        layer.kernel = {layer.weight.size(2), layer.weight.size(3)};
        layer.stride = int_list(child.value, "stride");
        layer.padding = int_list(child.value, "padding");
        layer.dilation = int_list(child.value, "dilation");
      }
    } else if (is_pass_through(type)) {
      if (frozen != nullptr)
        for (const auto& p : child.value.named_parameters(/*recurse=*/true))
          frozen->push_back(name + "." + p.name);
    } else {
      throw InputError(model_name, "layer type not supported by TRAK's per-example gradients")
          .key(name)
          .expected(
              "an nn.Sequential of Linear, Conv2d and parameter-free or normalisation "
              "layers (ReLU, pooling, Flatten, Dropout, BatchNorm, ...)")
          .found(type);
    }
    out.push_back(std::move(layer));
  }
}

}  // namespace

std::int64_t Layer::grad_rows() const {
  return weight.size(0);
}

std::int64_t Layer::grad_cols() const {
  return weight.numel() / weight.size(0) + (bias.defined() ? 1 : 0);
}

std::vector<Layer> sequential_layers(torch::jit::Module& model, const std::string& model_name,
                                     std::vector<std::string>* frozen) {
  model.eval();  // running statistics for BatchNorm, no dropout (ALGORITHM.md section 1)
  const std::string type = short_type(model);
  if (type != "Sequential")
    throw InputError(model_name, "TRAK needs a model whose top level is an nn.Sequential")
        .found(type);
  std::vector<Layer> layers;
  collect(model, "", model_name, layers, frozen);
  const bool any_trainable = std::any_of(layers.begin(), layers.end(), [](const Layer& l) {
    return l.kind != LayerKind::kPassThrough;
  });
  if (!any_trainable) throw InputError(model_name, "model has no Linear or Conv2d layer");
  return layers;
}

void verify_chain(torch::jit::Module& model, const std::vector<Layer>& layers,
                  const torch::Tensor& x, const std::string& model_name) {
  torch::NoGradGuard no_grad;
  torch::Tensor h = x;
  for (const auto& layer : layers) h = layer.module.get_method("forward")({h}).toTensor();
  const torch::Tensor direct = model.forward({x}).toTensor();
  if (!h.sizes().equals(direct.sizes()) || !torch::allclose(h, direct, 1e-4, 1e-5))
    throw InputError(model_name,
                     "the model's forward() is not the chain of its layers, so TRAK cannot "
                     "follow its gradients")
        .expected("an nn.Sequential without a custom forward");
}

torch::Tensor margins(const torch::Tensor& logits, const torch::Tensor& labels) {
  const torch::Tensor y = labels.to(torch::kLong).unsqueeze(1);
  const torch::Tensor correct = logits.gather(1, y).squeeze(1);
  const torch::Tensor others =
      logits.scatter(1, y, -std::numeric_limits<float>::infinity()).logsumexp(1);
  return correct - others;
}

MarginGradients margin_gradients(const std::vector<Layer>& layers, const torch::Tensor& x,
                                 const torch::Tensor& labels) {
  MarginGradients out;
  std::vector<torch::Tensor> outputs;
  torch::Tensor h = x;
  for (const auto& layer : layers) {
    const torch::Tensor input = h;
    h = layer.module.get_method("forward")({input}).toTensor();
    if (layer.kind != LayerKind::kPassThrough) {
      out.layers.push_back({input.detach(), {}});
      outputs.push_back(h);
    }
  }
  out.logits = h.detach();
  const torch::Tensor f = margins(h, labels).sum();
  const std::vector<torch::Tensor> grads = torch::autograd::grad({f}, outputs);
  for (std::size_t i = 0; i < grads.size(); ++i) out.layers[i].output_grad = grads[i].detach();
  return out;
}

torch::Tensor weight_gradient(const Layer& layer, const CapturedLayer& captured) {
  const torch::Tensor& d = captured.output_grad;
  const std::int64_t batch = d.size(0), rows = layer.grad_rows();
  if (layer.kind == LayerKind::kLinear)  // outer products delta_b u_b^T
    return d.reshape({batch, rows, 1}) * captured.input.reshape({batch, 1, -1});
  // Conv2d: the B per-example weight gradients are the weight gradient of one grouped
  // convolution whose groups are the examples (no im2col copy of the inputs).
  const torch::Tensor& in = captured.input;
  const std::int64_t channels = in.size(1);
  const torch::Tensor placeholder =
      torch::empty({batch * rows, channels, layer.kernel[0], layer.kernel[1]}, in.options());
  const auto grads = at::convolution_backward(
      d.reshape({1, batch * rows, d.size(2), d.size(3)}),
      in.reshape({1, batch * channels, in.size(2), in.size(3)}), placeholder, c10::nullopt,
      layer.stride, layer.padding, layer.dilation, /*transposed=*/false, {0, 0}, batch,
      {false, true, false});
  return std::get<1>(grads).view({batch, rows, -1});
}

torch::Tensor bias_gradient(const Layer& layer, const CapturedLayer& captured) {
  const torch::Tensor& d = captured.output_grad;
  const torch::Tensor flat = d.reshape({d.size(0), layer.grad_rows(), -1});
  return flat.size(2) == 1 ? flat.squeeze(2) : flat.sum(2);  // B x rows
}

torch::Tensor layer_gradient(const Layer& layer, const CapturedLayer& captured) {
  torch::Tensor w = weight_gradient(layer, captured);
  if (!layer.bias.defined()) return w;
  return torch::cat({w, bias_gradient(layer, captured).unsqueeze(2)}, 2);  // B x rows x cols
}

torch::Tensor flat_gradients(const std::vector<Layer>& layers, const MarginGradients& g) {
  std::vector<torch::Tensor> parts;
  std::size_t k = 0;
  for (const auto& layer : layers) {
    if (layer.kind == LayerKind::kPassThrough) continue;
    const CapturedLayer& captured = g.layers[k++];
    const torch::Tensor w = weight_gradient(layer, captured);
    parts.push_back(w.reshape({w.size(0), -1}));
    if (layer.bias.defined()) parts.push_back(bias_gradient(layer, captured));
  }
  return torch::cat(parts, 1);
}

}  // namespace modeldiff::core::detail
