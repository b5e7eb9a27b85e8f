#include "core/trak/detail/graph_capture.h"

#include <ATen/core/class_type.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/alias_analysis.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/remove_mutation.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <optional>
#include <unordered_map>

#include "core/base/error.h"

namespace modeldiff::core::detail {
namespace jit = torch::jit;

namespace {

// Which operand of which op may be a parameter, and as what.
enum class Role { kWeight, kBias, kOperand, kUnsupported };

struct OpSpec {
  OpKind kind;
  int activation;  // the operand captured as the op's input (-1: none)
};

std::optional<OpSpec> op_spec(const jit::Node* n) {
  const std::string k = n->kind().toQualString();
  if (k == "aten::linear") return OpSpec{OpKind::kLinear, 0};
  if (k == "aten::matmul") return OpSpec{OpKind::kMatmul, 0};
  if (k == "aten::conv2d" || k == "aten::_convolution" || k == "aten::convolution" ||
      k == "aten::_convolution_mode")
    return OpSpec{OpKind::kConv, 0};
  if (k == "aten::batch_norm") return OpSpec{OpKind::kBatchNorm, 0};
  if (k == "aten::layer_norm") return OpSpec{OpKind::kLayerNorm, 0};
  if (k == "aten::embedding") return OpSpec{OpKind::kEmbedding, 1};
  if (k == "aten::add" || k == "aten::sub") return OpSpec{OpKind::kAdd, -1};
  if (k == "aten::mul") return OpSpec{OpKind::kMul, -1};
  return std::nullopt;
}

Role role_of(OpKind kind, std::size_t offset) {
  switch (kind) {
    case OpKind::kLinear:
    case OpKind::kConv:
    case OpKind::kBatchNorm:
      return offset == 1 ? Role::kWeight : offset == 2 ? Role::kBias : Role::kUnsupported;
    case OpKind::kLayerNorm:
      return offset == 2 ? Role::kWeight : offset == 3 ? Role::kBias : Role::kUnsupported;
    case OpKind::kMatmul:
      return offset == 1 ? Role::kWeight : Role::kUnsupported;
    case OpKind::kEmbedding:
      return offset == 0 ? Role::kWeight : Role::kUnsupported;
    case OpKind::kAdd:
    case OpKind::kMul:
      return offset <= 1 ? Role::kOperand : Role::kUnsupported;
  }
  return Role::kUnsupported;
}

std::string block_owner(const jit::Node* n) {
  const jit::Node* owner = n->owningBlock()->owningNode();
  return owner != nullptr ? owner->kind().toQualString() : std::string("?");
}

void visit(jit::Block* b, const std::function<void(jit::Node*)>& f) {
  for (jit::Node* n : b->nodes()) {
    f(n);
    for (jit::Block* sub : n->blocks()) visit(sub, f);
  }
}

// The attribute path from self of a prim::GetAttr chain, or nullopt if v is not one.
std::optional<std::vector<std::string>> attr_path(const jit::Value* v, const jit::Value* self) {
  std::vector<std::string> path;
  while (v != self) {
    const jit::Node* n = v->node();
    if (n->kind() != c10::prim::GetAttr) return std::nullopt;
    path.push_back(n->s(c10::attr::name));
    v = n->input(0);
  }
  std::reverse(path.begin(), path.end());
  return path;
}

std::string join(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& p : path) out += (out.empty() ? "" : ".") + p;
  return out;
}

// The value the path names in the module object, and whether its last step is a parameter
// slot (a float attribute named `weight` is not).
c10::IValue resolve(const torch::jit::Module& m, const std::vector<std::string>& path,
                    bool* is_parameter) {
  c10::IValue obj = m._ivalue();
  *is_parameter = false;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (!obj.isObject()) return {};
    const auto o = obj.toObject();
    const auto slot = o->type()->findAttributeSlot(path[i]);
    if (!slot) return {};
    if (i + 1 == path.size()) *is_parameter = o->type()->is_parameter(*slot);
    obj = o->getSlot(*slot);
  }
  return obj;
}

std::vector<std::int64_t> constant_ints(const jit::Value* v, std::size_t n) {
  const auto iv = jit::toIValue(v);
  if (!iv) return {};
  std::vector<std::int64_t> out;
  if (iv->isIntList())
    out = iv->toIntVector();
  else if (iv->isInt())
    out = {iv->toInt()};
  if (out.size() == 1 && n > 1) out.assign(n, out[0]);
  return out;
}

}  // namespace

torch::Tensor margins(const torch::Tensor& logits, const torch::Tensor& labels) {
  const torch::Tensor y = labels.to(torch::kLong).unsqueeze(1);
  const torch::Tensor correct = logits.gather(1, y).squeeze(1);
  const torch::Tensor others =
      logits.scatter(1, y, -std::numeric_limits<float>::infinity()).logsumexp(1);
  return correct - others;
}

GraphGradients::~GraphGradients() = default;

GraphGradients::GraphGradients(torch::jit::Module model, std::string model_name,
                               const ParamSelection& selection, bool probe_every_output)
    : model_(std::move(model)), name_(std::move(model_name)) {
  model_.eval();  // running statistics for BatchNorm, no dropout (ALGORITHM.md section 1)
  std::unordered_map<const c10::TensorImpl*, int> index;
  std::vector<bool> chosen;  // by the patterns, under any of its names (tied tensors)
  std::vector<bool> pattern_used(selection.patterns.size(), false);
  for (const auto& p : model_.named_parameters(/*recurse=*/true)) {
    const auto it = index.find(p.value.unsafeGetTensorImpl());
    const int pi = it != index.end() ? it->second : static_cast<int>(params_.size());
    if (it == index.end()) {  // tied tensors are listed once, under their first name
      index[p.value.unsafeGetTensorImpl()] = pi;
      GraphParameter gp;
      gp.name = p.name;
      gp.tensor = p.value;
      params_.push_back(std::move(gp));
      chosen.push_back(false);
    }
    if (!p.value.requires_grad()) continue;
    chosen[pi] = chosen[pi] || selected_by_patterns(selection, p.name);
    for (std::size_t i = 0; i < selection.patterns.size(); ++i)
      if (glob_match(selection.patterns[i], p.name)) pattern_used[i] = true;
  }
  const bool any_trainable = std::any_of(params_.begin(), params_.end(),
                                         [](const auto& p) { return p.tensor.requires_grad(); });
  if (!any_trainable)
    throw InputError(name_,
                     "the model has no trainable parameters, so TRAK has nothing to attribute")
        .expected("a scripted or traced model with its parameters (not torch.jit.freeze'd)");
  for (std::size_t i = 0; i < selection.patterns.size(); ++i)
    if (!pattern_used[i]) {
      std::string names;
      for (std::size_t k = 0; k < params_.size() && k < 6; ++k)
        names += (k ? ", " : "") + params_[k].name;
      throw InputError(name_, "the parameter pattern matches no trainable parameter")
          .key(selection.patterns[i])
          .expected("dotted names such as " + (names.empty() ? std::string("fc.weight") : names) +
                    (params_.size() > 6 ? ", ..." : ""));
    }

  std::shared_ptr<jit::Graph> g = model_.get_method("forward").graph()->copy();
  jit::Inline(*g);
  jit::Value* self = g->inputs()[0];
  // training = False before removing mutation: BatchNorm's `num_batches_tracked.add_` in its
  // training branch would otherwise keep in-place ops alive.
  std::vector<jit::Node*> training;
  visit(g->block(), [&](jit::Node* n) {
    if (n->kind() == c10::prim::GetAttr && n->s(c10::attr::name) == "training")
      training.push_back(n);
  });
  for (jit::Node* n : training) {
    jit::WithInsertPoint guard(n);
    n->output()->replaceAllUsesWith(g->insertConstant(false));
  }
  jit::ConstantPropagation(g);
  jit::EliminateDeadCode(g);
  jit::RemoveListMutation(g);
  jit::RemoveTensorMutation(g);
  jit::ConstantPropagation(g);
  jit::EliminateDeadCode(g);

  // Every use of a module object other than reading an attribute (a method call that could
  // not be inlined, say) could hide parameter uses.
  visit(g->block(), [&](jit::Node* n) {
    if (n->kind() == c10::prim::GetAttr) return;
    for (const jit::Value* in : n->inputs())
      if (in->type()->cast<c10::ClassType>())
        throw InputError(name_, "TRAK cannot follow the model's forward: a module is passed to " +
                                    std::string(n->kind().toQualString()))
            .expected("forward code whose module calls can be inlined");
  });

  // The parameter reads: (GetAttr node, parameter index). Parameters not trained or not
  // selected are constants here.
  std::vector<std::pair<jit::Node*, int>> reads;
  visit(g->block(), [&](jit::Node* n) {
    if (n->kind() != c10::prim::GetAttr) return;
    const auto path = attr_path(n->output(), self);
    if (!path) return;
    bool is_param = false;
    const c10::IValue v = resolve(model_, *path, &is_param);
    if (!is_param || !v.isTensor()) return;
    const auto it = index.find(v.toTensor().unsafeGetTensorImpl());
    if (it == index.end() || !params_[it->second].tensor.requires_grad() || !chosen[it->second])
      return;
    reads.emplace_back(n, it->second);
  });
  if (selection.skip_normalization)  // all of a normalisation parameter, or none of it
    for (const auto& [n, pi] : reads)
      for (const jit::Use& use : n->output()->uses()) {
        const auto spec = op_spec(use.user);
        if (spec && (spec->kind == OpKind::kBatchNorm || spec->kind == OpKind::kLayerNorm))
          chosen[pi] = false;
      }

  // The ops consuming parameters.
  std::unordered_map<jit::Node*, std::size_t> op_of;
  std::vector<jit::Node*> op_nodes;
  std::vector<bool> used(params_.size(), false);
  for (const auto& [n, pi] : reads) {
    if (!chosen[pi]) continue;
    const std::string pname = join(*attr_path(n->output(), self));
    if (n->owningBlock() != g->block())
      throw InputError(name_, "TRAK cannot follow a parameter read inside " + block_owner(n))
          .key(pname)
          .expected("parameters used outside if/loop blocks")
          .found(block_owner(n));
    for (const jit::Use& use : n->output()->uses()) {
      jit::Node* user = use.user;
      const std::string kind = user->kind().toQualString();
      if (user->owningBlock() != g->block())
        throw InputError(name_, "TRAK cannot follow a parameter used inside " + block_owner(user) +
                                    " (by " + kind + ")")
            .key(pname)
            .expected("parameters used outside if/loop blocks")
            .found(kind + " inside " + block_owner(user));
      if (user->kind() == c10::prim::Return) continue;  // returned, not differentiated
      const auto spec = op_spec(user);
      const Role role = spec ? role_of(spec->kind, use.offset) : Role::kUnsupported;
      if (role == Role::kUnsupported)
        throw InputError(name_, "TRAK's per-example gradients do not support the op " + kind +
                                    " consuming a parameter (operand " +
                                    std::to_string(use.offset) + ")")
            .key(pname)
            .expected(
                "parameters consumed by linear, matmul, conv2d, batch_norm, layer_norm, "
                "embedding or elementwise add/sub/mul")
            .found(kind);
      auto [slot, fresh] = op_of.emplace(user, ops_.size());
      if (fresh) {
        ParamOp op;
        op.kind = spec->kind;
        op.op = kind;
        ops_.push_back(op);
        op_nodes.push_back(user);
      }
      ParamOp& op = ops_[slot->second];
      if (role == Role::kBias) {
        op.bias = pi;
      } else {
        if (op.weight >= 0 && op.weight != pi)
          throw InputError(name_, "TRAK cannot follow " + kind + " of two parameters")
              .key(pname)
              .found(params_[op.weight].name + " and " + pname);
        op.weight = pi;
        if (op.kind == OpKind::kAdd || op.kind == OpKind::kMul) {
          // The captured input is the other operand; alpha scales the parameter in add/sub.
          const std::size_t other = 1 - use.offset;
          if (user->inputs().size() < 2 ||
              !user->input(other)->type()->isSubtypeOf(*c10::TensorType::get()))
            throw InputError(name_, kind + " of a parameter with a number has no batch dimension")
                .key(pname)
                .expected("a parameter combined with the activations");
          double alpha = 1;
          if (op.kind == OpKind::kAdd && user->inputs().size() > 2) {
            const auto a = jit::toIValue(user->input(2));
            if (!a || !(a->isDouble() || a->isInt()))
              throw InputError(name_, "TRAK needs a constant alpha in " + kind).key(pname);
            alpha = a->isDouble() ? a->toDouble() : static_cast<double>(a->toInt());
          }
          const bool sub = kind == "aten::sub";
          op.alpha = use.offset == 0 ? 1.0 : (sub ? -alpha : alpha);
        }
      }
      used[pi] = true;
    }
  }
  for (std::size_t i = 0; i < params_.size(); ++i) params_[i].attributed = used[i];
  if (ops_.empty())
    throw InputError(name_, "no selected trainable parameter is used by the model's forward")
        .expected("a model with trainable parameters (" + core::describe(selection) + ")");

  // Settings of each op, which must be constants after propagation.
  for (std::size_t k = 0; k < ops_.size(); ++k) {
    ParamOp& op = ops_[k];
    jit::Node* n = op_nodes[k];
    const std::string pname = params_[op.weight >= 0 ? op.weight : op.bias].name;
    const auto refuse = [&](const std::string& why) {
      return InputError(name_, "TRAK cannot follow " + op.op + ": " + why).key(pname).found(op.op);
    };
    const auto weight_tensor = [&]() -> torch::Tensor {
      bool is_param = false;
      const auto path = attr_path(n->input(op.kind == OpKind::kEmbedding ? 0 : 1), self);
      if (!path) return {};
      const c10::IValue v = resolve(model_, *path, &is_param);
      return v.isTensor() ? v.toTensor() : torch::Tensor();
    };
    switch (op.kind) {
      case OpKind::kConv: {
        const torch::Tensor w = weight_tensor();
        if (!w.defined() || w.dim() != 4)
          throw refuse("only 2-D convolutions with a parameter weight are supported");
        // conv2d and _convolution_mode (traced string padding) share one layout; _convolution
        // (traced) and convolution have transposed and output_padding too.
        const bool full_schema = op.op == "aten::_convolution" || op.op == "aten::convolution";
        if (full_schema) {
          const auto transposed = jit::toIValue(n->input(6));
          if (!transposed || !transposed->isBool() || transposed->toBool())
            throw refuse("transposed convolutions are not supported");
        }
        op.kernel = {w.size(2), w.size(3)};
        op.stride = constant_ints(n->input(3), 2);
        op.dilation = constant_ints(n->input(5), 2);
        const auto groups = jit::toIValue(n->input(full_schema ? 8 : 6));
        if (op.stride.size() != 2 || op.dilation.size() != 2 || !groups || !groups->isInt())
          throw refuse("stride, dilation and groups must be constants");
        op.groups = groups->toInt();
        const auto padding = jit::toIValue(n->input(4));
        if (padding && padding->isString()) {
          const std::string mode = padding->toStringRef();
          if (mode == "valid") {
            op.pad = {0, 0, 0, 0};
          } else if (mode == "same") {
            // Like PyTorch: total d (k - 1) per side pair, the odd one on the right/bottom.
            const std::int64_t th = op.dilation[0] * (op.kernel[0] - 1);
            const std::int64_t tw = op.dilation[1] * (op.kernel[1] - 1);
            op.pad = {tw / 2, tw - tw / 2, th / 2, th - th / 2};
          } else {
            throw refuse("unknown padding mode '" + mode + "'");
          }
        } else {
          const auto p = constant_ints(n->input(4), 2);
          if (p.size() != 2) throw refuse("padding must be a constant");
          op.pad = {p[1], p[1], p[0], p[0]};
        }
        if (full_schema) {
          const auto out_pad = constant_ints(n->input(7), 2);
          if (std::any_of(out_pad.begin(), out_pad.end(), [](auto v) { return v != 0; }))
            throw refuse("output padding is not supported");
        }
        break;
      }
      case OpKind::kBatchNorm: {
        const auto train = jit::toIValue(n->input(5));
        if (!train || !train->isBool() || train->toBool())
          throw refuse(
              "batch_norm in training mode (a BatchNorm without running statistics?) "
              "mixes the examples of a batch");
        bool is_param = false;
        const auto mean = attr_path(n->input(3), self), var = attr_path(n->input(4), self);
        const c10::IValue m = mean ? resolve(model_, *mean, &is_param) : c10::IValue();
        const c10::IValue v = var ? resolve(model_, *var, &is_param) : c10::IValue();
        if (!m.isTensor() || !v.isTensor()) throw refuse("running statistics must be buffers");
        op.running_mean = m.toTensor();
        op.running_var = v.toTensor();
        const auto eps = jit::toIValue(n->input(7));
        if (!eps || !eps->isDouble()) throw refuse("eps must be a constant");
        op.eps = eps->toDouble();
        break;
      }
      case OpKind::kLayerNorm: {
        const auto shape = constant_ints(n->input(1), 1);
        const auto eps = jit::toIValue(n->input(4));
        if (shape.empty() || !eps || !eps->isDouble())
          throw refuse("normalized_shape and eps must be constants");
        op.normalized_dims = static_cast<std::int64_t>(shape.size());
        op.eps = eps->toDouble();
        break;
      }
      case OpKind::kEmbedding: {
        const auto pad = jit::toIValue(n->input(2));
        const auto freq = jit::toIValue(n->input(3));
        if (!pad || !pad->isInt() || !freq || !freq->isBool())
          throw refuse("padding_idx and scale_grad_by_freq must be constants");
        if (freq->toBool()) throw refuse("scale_grad_by_freq is not supported");
        op.padding_idx = pad->toInt();
        break;
      }
      case OpKind::kMatmul: {
        const torch::Tensor w = weight_tensor();
        if (!w.defined() || w.dim() != 2) throw refuse("only a 2-D parameter as right operand");
        break;
      }
      default:
        break;
    }
    if (op.weight >= 0) {
      GraphParameter& p = params_[op.weight];
      if (op.kind == OpKind::kLinear || op.kind == OpKind::kConv || op.kind == OpKind::kMatmul ||
          op.kind == OpKind::kEmbedding) {
        const std::int64_t rows = p.tensor.size(0), cols = p.tensor.numel() / rows;
        if (p.rows != 0 && (p.rows != rows || p.cols != cols))
          throw refuse("the parameter is used with two matrix shapes");
        p.rows = rows;
        p.cols = cols;
      }
    }
  }
  for (const ParamOp& op : ops_) {
    const bool matrix = op.kind == OpKind::kLinear || op.kind == OpKind::kConv ||
                        op.kind == OpKind::kMatmul || op.kind == OpKind::kEmbedding;
    if (op.weight >= 0 && matrix != (params_[op.weight].rows != 0))
      throw InputError(name_,
                       "TRAK cannot follow a parameter used both as a matrix and elementwise")
          .key(params_[op.weight].name)
          .found(op.op);
  }

  // Each op's output y is returned as an extra output and differentiated directly (correct
  // with the SIMPLE executor). An output still written in place after the passes would change
  // under autograd: it gets a probe instead, y -> y + eps with eps a zero graph input, and the
  // gradient is taken with respect to eps. The activations are returned too.
  {
    jit::AliasDb written(g);
    for (std::size_t k = 0; k < ops_.size(); ++k)
      ops_[k].probed = probe_every_output || written.hasWriters(op_nodes[k]->output(0));
  }
  std::vector<jit::Value*> probed;
  for (std::size_t k = 0; k < ops_.size(); ++k) {
    jit::Node* n = op_nodes[k];
    jit::Value* y = n->output(0);
    probed.push_back(y);
    if (!ops_[k].probed) continue;
    ++num_probes_;
    jit::Value* eps = g->addInput("probe");
    eps->setType(c10::TensorType::get());
    jit::WithInsertPoint guard(n->next());
    jit::Value* out = g->insert(c10::aten::add, {y, eps});
    y->replaceAllUsesAfterNodeWith(out->node(), out);
  }
  // After the probes: the logits may be an op's output, now plus its probe.
  std::vector<jit::Value*> outputs{g->outputs()[0]};
  jit::AliasDb alias(g);
  for (std::size_t k = 0; k < ops_.size(); ++k) {
    const auto spec = op_spec(op_nodes[k]);
    int act = spec->activation;
    if (ops_[k].kind == OpKind::kMul) {
      // The other operand of the parameter.
      const jit::Node* n = op_nodes[k];
      act = -1;
      for (std::size_t i = 0; i < 2; ++i) {
        const auto path = attr_path(n->input(i), self);
        bool is_param = false;
        if (path) resolve(model_, *path, &is_param);
        if (!is_param) act = static_cast<int>(i);
      }
    }
    if (act < 0) {
      outputs.push_back(g->insertConstant(c10::IValue()));
      continue;
    }
    jit::Value* a = op_nodes[k]->input(static_cast<std::size_t>(act));
    if (alias.hasWriters(a))
      throw InputError(name_, "TRAK cannot follow an activation written in place after " +
                                  ops_[k].op + " reads it")
          .key(params_[ops_[k].weight >= 0 ? ops_[k].weight : ops_[k].bias].name);
    outputs.push_back(a);
  }
  for (jit::Value* y : probed) outputs.push_back(y);
  {
    jit::WithInsertPoint guard(g->return_node());
    jit::Node* tuple = g->insertNode(g->createTuple(outputs));
    g->eraseOutput(0);
    g->registerOutput(tuple->output());
  }
  fn_ = std::make_shared<jit::GraphFunction>(c10::QualifiedName("trak_capture"), g, nullptr,
                                             jit::ExecutorExecutionMode::SIMPLE);
}

std::int64_t GraphGradients::num_attributed() const {
  std::int64_t n = 0;
  for (const auto& p : params_)
    if (p.attributed) n += p.tensor.numel();
  return n;
}

std::vector<std::string> GraphGradients::left_out() const {
  std::vector<std::string> out;
  for (const auto& p : params_)
    if (!p.attributed) out.push_back(p.name);
  return out;
}

std::string GraphGradients::describe() const {
  std::int64_t tensors = 0;
  for (const auto& p : params_) tensors += p.attributed ? 1 : 0;
  std::string out = "attributes " + std::to_string(num_attributed()) + " parameters in " +
                    std::to_string(tensors) + " tensors (" + std::to_string(ops_.size()) + " ops)";
  const auto left = left_out();
  if (!left.empty()) {
    out += "; left out: ";
    for (std::size_t i = 0; i < left.size() && i < 8; ++i) out += (i ? ", " : "") + left[i];
    if (left.size() > 8) out += ", ... (" + std::to_string(left.size()) + " in all)";
  }
  return out;
}

const std::vector<ProbeShape>& GraphGradients::output_shapes(const torch::Tensor& x) const {
  const std::vector<std::int64_t> key = x.sizes().vec();
  auto it = shapes_.find(key);
  if (it != shapes_.end()) return it->second;
  // One run without gradients, with scalar probes, to learn the shapes of the probed outputs.
  torch::NoGradGuard no_grad;
  std::vector<c10::IValue> stack{model_._ivalue(), x};
  for (std::int64_t k = 0; k < num_probes_; ++k)
    stack.emplace_back(torch::zeros({}, x.options().dtype(torch::kFloat32)));
  const c10::IValue out = (*fn_)(stack);
  const auto& elems = out.toTupleRef().elements();
  std::vector<ProbeShape> shapes;
  for (std::size_t k = 0; k < ops_.size(); ++k) {
    const torch::Tensor y = elems[1 + ops_.size() + k].toTensor();
    shapes.push_back({y.sizes().vec(), y.options()});
  }
  return shapes_.emplace(key, std::move(shapes)).first->second;
}

Captured GraphGradients::capture(const torch::Tensor& x, const torch::Tensor& labels) const {
  std::vector<torch::Tensor> wrt(ops_.size());
  std::vector<c10::IValue> stack{model_._ivalue(), x};
  if (num_probes_ > 0) {
    const std::vector<ProbeShape>& shapes = output_shapes(x);
    for (std::size_t k = 0; k < ops_.size(); ++k)
      if (ops_[k].probed) {
        // A zero scalar expanded to the output's shape: no memory to fill, and the gradient
        // with respect to the expanded tensor has the full shape.
        wrt[k] = torch::zeros({}, shapes[k].options.requires_grad(true)).expand(shapes[k].sizes);
        stack.emplace_back(wrt[k]);
      }
  }
  const c10::IValue out = (*fn_)(stack);
  const auto& elems = out.toTupleRef().elements();
  if (!elems[0].isTensor() || elems[0].toTensor().dim() != 2 ||
      elems[0].toTensor().size(0) != x.size(0))
    throw InputError(name_, "the model's forward must return logits, one row per example")
        .expected(std::to_string(x.size(0)) + " x classes");
  Captured c;
  const torch::Tensor logits = elems[0].toTensor();
  c.logits = logits.detach();
  const torch::Tensor f = margins(logits, labels).sum();
  std::vector<torch::Tensor> inputs;
  std::vector<std::size_t> which;
  for (std::size_t k = 0; k < ops_.size(); ++k) {
    if (!ops_[k].probed) wrt[k] = elems[1 + ops_.size() + k].toTensor();
    if (wrt[k].requires_grad()) {
      inputs.push_back(wrt[k]);
      which.push_back(k);
    }
  }
  const auto grads = torch::autograd::grad({f}, inputs, {}, /*retain_graph=*/false,
                                           /*create_graph=*/false, /*allow_unused=*/true);
  std::vector<torch::Tensor> delta(ops_.size());
  for (std::size_t i = 0; i < which.size(); ++i) delta[which[i]] = grads[i];
  for (std::size_t k = 0; k < ops_.size(); ++k) {
    const c10::IValue& a = elems[1 + k];
    c.inputs.push_back(a.isTensor() ? a.toTensor().detach() : torch::Tensor());
    // An output the margins do not depend on has a zero gradient.
    c.deltas.push_back(delta[k].defined() ? delta[k] : torch::zeros_like(wrt[k]));
    if (c.deltas.back().dim() == 0 || c.deltas.back().size(0) != x.size(0))
      throw InputError(name_, "the output of " + ops_[k].op + " has no batch dimension")
          .key(params_[ops_[k].weight >= 0 ? ops_[k].weight : ops_[k].bias].name);
  }
  return c;
}

namespace {

// Sums t (B x y-shape) to B x shape, the shape broadcast against y's non-batch dims.
torch::Tensor reduce_to(const torch::Tensor& t, at::IntArrayRef shape, const std::string& model,
                        const std::string& param) {
  const std::int64_t yd = t.dim(), pd = static_cast<std::int64_t>(shape.size());
  if (pd > yd || (pd == yd && shape[0] != 1))
    throw InputError(model, "an elementwise parameter spans the batch dimension").key(param);
  std::vector<std::int64_t> dims;
  for (std::int64_t d = 1; d < yd; ++d) {
    const std::int64_t pdim = d - (yd - pd) >= 0 ? shape[d - (yd - pd)] : 1;
    if (pdim == 1 && t.size(d) != 1) dims.push_back(d);
  }
  torch::Tensor r = dims.empty() ? t : t.sum(dims, /*keepdim=*/true);
  std::vector<std::int64_t> out{t.size(0)};
  out.insert(out.end(), shape.begin(), shape.end());
  return r.reshape(out);
}

// Sum over all dims but the first `keep`.
torch::Tensor sum_from(const torch::Tensor& t, std::int64_t keep) {
  std::vector<std::int64_t> dims;
  for (std::int64_t d = keep; d < t.dim(); ++d) dims.push_back(d);
  return dims.empty() ? t : t.sum(dims);
}

}  // namespace

std::vector<Contribution> GraphGradients::contributions(std::size_t k, const Captured& c) const {
  const ParamOp& op = ops_[k];
  const torch::Tensor& d = c.deltas[k];
  const torch::Tensor& a = c.inputs[k];
  const std::int64_t batch = d.size(0);
  std::vector<Contribution> out;
  const auto add_direct = [&](int param, torch::Tensor g) {
    Contribution ct;
    ct.param = param;
    ct.direct = g.reshape({batch, -1});
    out.push_back(std::move(ct));
  };
  switch (op.kind) {
    case OpKind::kLinear: {
      const std::int64_t rows = d.size(-1);
      const torch::Tensor left = d.reshape({batch, -1, rows});
      if (op.weight >= 0) {
        Contribution ct;
        ct.param = op.weight;
        ct.left = left.transpose(1, 2);
        ct.right = a.reshape({batch, -1, a.size(-1)}).transpose(1, 2);
        out.push_back(std::move(ct));
      }
      if (op.bias >= 0) add_direct(op.bias, left.sum(1));
      break;
    }
    case OpKind::kMatmul: {
      Contribution ct;
      ct.param = op.weight;
      ct.left = a.reshape({batch, -1, a.size(-1)}).transpose(1, 2);
      ct.right = d.reshape({batch, -1, d.size(-1)}).transpose(1, 2);
      out.push_back(std::move(ct));
      break;
    }
    case OpKind::kConv: {
      const std::int64_t rows = d.size(1);
      const torch::Tensor dflat = d.reshape({batch, rows, -1});  // B x C_out x L
      if (op.weight >= 0) {
        const torch::Tensor padded =
            std::any_of(op.pad.begin(), op.pad.end(), [](auto v) { return v != 0; })
                ? torch::constant_pad_nd(a, op.pad)
                : a;
        Contribution ct;
        ct.param = op.weight;
        if (op.groups == 1) {
          // Delta_i U_i^T with U_i = im2col(a_i): C_in k k x L. U is left implicit: a
          // projection P_in^T U_i is a convolution of a_i with P_in's columns as filters.
          ct.left = dflat;
          ct.conv_input = padded;
          ct.conv = &op;
        } else {
          // The B per-example weight gradients of a grouped convolution are the weight gradient
          // of one convolution whose groups are the examples' groups.
          const std::int64_t channels = padded.size(1);
          const torch::Tensor placeholder = torch::empty(
              {batch * rows, channels / op.groups, op.kernel[0], op.kernel[1]}, padded.options());
          const auto grads = at::convolution_backward(
              d.reshape({1, batch * rows, d.size(2), d.size(3)}),
              padded.reshape({1, batch * channels, padded.size(2), padded.size(3)}), placeholder,
              c10::nullopt, op.stride, {0, 0}, op.dilation, /*transposed=*/false, {0, 0},
              batch * op.groups, {false, true, false});
          ct.full = std::get<1>(grads).reshape({batch, rows, -1});
        }
        out.push_back(std::move(ct));
      }
      if (op.bias >= 0) add_direct(op.bias, dflat.sum(2));
      break;
    }
    case OpKind::kBatchNorm: {
      if (op.weight >= 0) {
        std::vector<std::int64_t> shape(static_cast<std::size_t>(a.dim()), 1);
        shape[1] = a.size(1);
        const torch::Tensor xhat = (a - op.running_mean.reshape(shape)) *
                                   torch::rsqrt(op.running_var.reshape(shape) + op.eps);
        add_direct(op.weight, sum_from(d * xhat, 2));
      }
      if (op.bias >= 0) add_direct(op.bias, sum_from(d, 2));
      break;
    }
    case OpKind::kLayerNorm: {
      const std::int64_t lead = d.dim() - op.normalized_dims;
      std::vector<std::int64_t> norm_dims, lead_dims;
      for (std::int64_t i = lead; i < d.dim(); ++i) norm_dims.push_back(i);
      for (std::int64_t i = 1; i < lead; ++i) lead_dims.push_back(i);
      const auto lead_sum = [&](const torch::Tensor& t) {
        return lead_dims.empty() ? t : t.sum(lead_dims);
      };
      if (op.weight >= 0) {
        const torch::Tensor mean = a.mean(norm_dims, /*keepdim=*/true);
        const torch::Tensor var = (a - mean).pow(2).mean(norm_dims, /*keepdim=*/true);
        const torch::Tensor xhat = (a - mean) * torch::rsqrt(var + op.eps);
        add_direct(op.weight, lead_sum(d * xhat));
      }
      if (op.bias >= 0) add_direct(op.bias, lead_sum(d));
      break;
    }
    case OpKind::kEmbedding: {
      const std::int64_t dim = d.size(-1);
      Contribution ct;
      ct.param = op.weight;
      ct.left_index = a.reshape({batch, -1}).to(torch::kLong);
      ct.right = d.reshape({batch, -1, dim}).transpose(1, 2);
      // The padding row gets no gradient (F.embedding passes a non-negative padding_idx,
      // -1 for none).
      if (op.padding_idx >= 0)
        ct.right = ct.right * ct.left_index.ne(op.padding_idx).unsqueeze(1).to(ct.right.dtype());
      out.push_back(std::move(ct));
      break;
    }
    case OpKind::kAdd: {
      const GraphParameter& p = params_[op.weight];
      add_direct(op.weight, reduce_to(d, p.tensor.sizes(), name_, p.name) * op.alpha);
      break;
    }
    case OpKind::kMul: {
      const GraphParameter& p = params_[op.weight];
      add_direct(op.weight, reduce_to(d * a, p.tensor.sizes(), name_, p.name));
      break;
    }
  }
  return out;
}

torch::Tensor contribution_gradient(const Contribution& c, const GraphParameter& p) {
  if (c.direct.defined()) return c.direct;
  if (c.full.defined()) return c.full;
  if (c.conv != nullptr) {
    const torch::Tensor u =
        at::im2col(c.conv_input, c.conv->kernel, c.conv->dilation, {0, 0}, c.conv->stride);
    return torch::bmm(c.left, u.transpose(1, 2));
  }
  if (c.left.defined()) return torch::bmm(c.left, c.right.transpose(1, 2));
  // One-hot left side: scatter-add the right columns into the rows the indices name.
  const torch::Tensor right = c.right.transpose(1, 2);  // B x T x cols
  const std::int64_t batch = right.size(0), cols = right.size(2);
  torch::Tensor g = torch::zeros({batch, p.rows, cols}, right.options());
  return g.scatter_add_(1, c.left_index.unsqueeze(2).expand({batch, c.left_index.size(1), cols}),
                        right);
}

std::vector<torch::Tensor> GraphGradients::per_example(const Captured& c) const {
  std::vector<torch::Tensor> out(params_.size());
  for (std::size_t k = 0; k < ops_.size(); ++k)
    for (const Contribution& ct : contributions(k, c)) {
      const GraphParameter& p = params_[ct.param];
      torch::Tensor g = contribution_gradient(ct, p).reshape({c.logits.size(0), -1});
      out[ct.param] = out[ct.param].defined() ? out[ct.param] + g : g;
    }
  for (std::size_t i = 0; i < params_.size(); ++i)
    if (params_[i].attributed) {
      std::vector<std::int64_t> shape{c.logits.size(0)};
      const auto s = params_[i].tensor.sizes();
      shape.insert(shape.end(), s.begin(), s.end());
      out[i] = out[i].reshape(shape);
    }
  return out;
}

torch::Tensor GraphGradients::flat(const Captured& c) const {
  std::vector<torch::Tensor> parts;
  for (const torch::Tensor& g : per_example(c))
    if (g.defined()) parts.push_back(g.reshape({g.size(0), -1}));
  return torch::cat(parts, 1);
}

}  // namespace modeldiff::core::detail
