#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <random>

#include "core/base/error.h"
#include "core/trak/detail/projection.h"

namespace modeldiff::core::detail {

std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ull * (a + 1) + 0xbf58476d1ce4e5b9ull * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

torch::Tensor rademacher(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  torch::Tensor out = torch::empty({rows, cols}, torch::kFloat32);
  float* p = out.data_ptr<float>();
  std::mt19937_64 rng(seed);
  const std::int64_t n = rows * cols;
  for (std::int64_t i = 0; i < n; i += 64) {
    std::uint64_t bits = rng();
    const std::int64_t end = std::min<std::int64_t>(n, i + 64);
    for (std::int64_t j = i; j < end; ++j, bits >>= 1) p[j] = (bits & 1u) ? 1.0f : -1.0f;
  }
  return out;
}

torch::Tensor scaled_orthogonal(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  MD_ASSERT(cols >= 1 && cols <= rows);
  // A Gaussian square matrix by Box-Muller on 53-bit uniforms (no std::normal_distribution,
  // whose algorithm differs between standard libraries), filled column by column.
  Eigen::MatrixXd g(rows, rows);
  std::mt19937_64 rng(seed);
  constexpr double kTwoPi = 6.283185307179586, kUnit = 1.0 / 9007199254740992.0;  // 2^-53
  for (Eigen::Index i = 0; i < g.size(); i += 2) {
    const double u1 = static_cast<double>((rng() >> 11) + 1) * kUnit;  // (0, 1]
    const double u2 = static_cast<double>(rng() >> 11) * kUnit;        // [0, 1)
    const double r = std::sqrt(-2.0 * std::log(u1));
    g.data()[i] = r * std::cos(kTwoPi * u2);
    if (i + 1 < g.size()) g.data()[i + 1] = r * std::sin(kTwoPi * u2);
  }
  // Its Q factor with R's diagonal made positive is Haar-distributed (Mezzadri 2007).
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
  const Eigen::MatrixXd q = qr.householderQ();
  const Eigen::MatrixXd& r = qr.matrixQR();
  torch::Tensor out = torch::empty({rows, cols}, torch::kFloat32);
  auto a = out.accessor<float, 2>();
  const double scale = std::sqrt(static_cast<double>(rows));
  for (std::int64_t j = 0; j < cols; ++j) {
    const double sign = r(j, j) < 0 ? -scale : scale;
    for (std::int64_t i = 0; i < rows; ++i) a[i][j] = static_cast<float>(sign * q(i, j));
  }
  return out;
}

namespace {

// A layer whose output side has at most this many rows (a classifier head, a narrow
// convolution) keeps rows - 1 dimensions of that side and spends the rest of its share on the
// input side: the output side is cheap to keep and projecting it hard loses the most
// information per dimension. Not all rows: the margin's gradient with respect to the logits
// sums to zero, so an exact classifier head would give every example's features the same
// k2 linear dependencies and make the kernel singular.
constexpr std::int64_t kExactOutputRows = 16;

// The dense p x k matrix beyond this many bytes is refused with advice rather than left to
// fail an allocation (torchvision's resnet18 at k = 2048 would need 90 GB).
constexpr double kMaxDenseBytes = 4.0 * (1ull << 30);

// P^T x per example: x is B x n x T, p is n x k and pt its transpose (k x n, rows contiguous);
// B x k x T. One GEMM over the batch when T = 1 (a linear layer on vectors), a batched GEMM
// with P^T broadcast otherwise (several times faster than matmul's or a 1 x 1 convolution's
// handling of the same product).
torch::Tensor side(const torch::Tensor& x, const torch::Tensor& p, const torch::Tensor& pt) {
  if (x.size(2) == 1) return x.reshape({x.size(0), x.size(1)}).mm(p).unsqueeze(2);
  return torch::bmm(pt.expand({x.size(0), pt.size(0), pt.size(1)}), x);
}

}  // namespace

Projector::Projector(const GraphGradients& graph, const TrakSettings& settings, int checkpoint)
    : kind_(settings.projection) {
  const auto& params = graph.parameters();
  const auto& ops = graph.ops();
  num_params_ = graph.num_attributed();
  if (settings.proj_dim < 1)
    throw InputError("", "projection dimension must be positive")
        .found(std::to_string(settings.proj_dim));
  const auto ck = static_cast<std::uint64_t>(checkpoint);
  if (kind_ == ProjectionKind::kDense) {
    dim_ = settings.proj_dim;
    const double bytes = 4.0 * static_cast<double>(num_params_) * static_cast<double>(dim_);
    if (bytes > kMaxDenseBytes)
      throw InputError(graph.model_name(),
                       "the dense projection of " + std::to_string(num_params_) +
                           " parameters to " + std::to_string(dim_) + " dimensions needs " +
                           std::to_string(static_cast<long long>(bytes / 1e9)) + " GB")
          .expected("the structured projection (--projection structured) or a smaller --proj-dim");
    dense_ = rademacher(num_params_, dim_, mix_seed(settings.seed, ck, 0)) /
             std::sqrt(static_cast<float>(num_params_));
    return;
  }
  // One block per matrix parameter, in parameter order; its bias joins it as a last column
  // when every op using that bias uses this weight (a Linear or Conv2d layer).
  block_of_.assign(params.size(), -1);
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!params[i].attributed || params[i].rows == 0) continue;
    const int w = static_cast<int>(i);
    int bias = -2;  // -2: none seen, -1: none usable
    for (const ParamOp& op : ops)
      if (op.weight == w && op.bias >= 0) bias = (bias == -2 || bias == op.bias) ? op.bias : -1;
    if (bias >= 0)
      for (const ParamOp& op : ops)
        if ((op.bias == bias && op.weight != w) || op.weight == bias) bias = -1;
    Block b;
    b.weight = w;
    b.bias = std::max(bias, -1);
    b.rows = params[i].rows;
    b.cols = params[i].cols + (b.bias >= 0 ? 1 : 0);
    block_of_[i] = static_cast<int>(blocks_.size());
    if (b.bias >= 0) block_of_[b.bias] = static_cast<int>(blocks_.size());
    blocks_.push_back(b);
  }
  std::int64_t rest_size = 0;
  for (std::size_t i = 0; i < params.size(); ++i)
    if (params[i].attributed && block_of_[i] < 0) {
      rest_.push_back(static_cast<int>(i));
      rest_size += params[i].tensor.numel();
    }
  if (rest_size > 0) {
    Block b;
    b.rows = 1;
    b.cols = rest_size;
    blocks_.push_back(b);
  }

  // Water-filling: blocks whose whole gradient fits their share are kept exactly; the rest of
  // the dimensions are shared in proportion to the blocks' sizes.
  const std::size_t n = blocks_.size();
  std::vector<std::int64_t> size(n), target(n, -1);
  for (std::size_t i = 0; i < n; ++i) size[i] = blocks_[i].rows * blocks_[i].cols;
  double remaining = settings.proj_dim;
  for (bool changed = true; changed;) {
    changed = false;
    double pending = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (target[i] < 0) pending += static_cast<double>(size[i]);
    for (std::size_t i = 0; i < n && pending > 0; ++i)
      if (target[i] < 0 && static_cast<double>(size[i]) <= remaining * size[i] / pending) {
        target[i] = size[i];
        remaining -= static_cast<double>(size[i]);
        changed = true;
      }
  }
  double pending = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (target[i] < 0) pending += static_cast<double>(size[i]);
  for (std::size_t i = 0; i < n; ++i)
    if (target[i] < 0)
      target[i] =
          std::max<std::int64_t>(1, static_cast<std::int64_t>(remaining * size[i] / pending));

  for (std::size_t i = 0; i < n; ++i) {
    Block& b = blocks_[i];
    const std::int64_t rows = b.rows, cols = b.cols;
    if (target[i] >= size[i]) {
      b.k1 = rows;
      b.k2 = cols;
    } else {
      // Split the block's dimensions between the output and input sides in proportion to
      // their sizes (k1 / k2 ~ rows / cols).
      const double t = static_cast<double>(target[i]);
      b.k1 = rows <= kExactOutputRows && rows >= 2 && target[i] >= rows
                 ? rows - 1
                 : std::clamp<std::int64_t>(std::llround(std::sqrt(t * rows / cols)), 1, rows);
      b.k2 = std::clamp<std::int64_t>(target[i] / b.k1, 1, cols);
    }
    float scale = 1.0f;
    if (b.k1 < rows) {
      // All rows but one (a classifier head, whose margin gradients sum to zero over the rows):
      // columns of a random orthogonal matrix, not signs. A +-1 matrix this small is often
      // singular on the zero-sum deltas ([P_out, 1] is singular for 37% of 10 x 9 sign
      // matrices), which cost such checkpoints a k2-dimensional slice of the head's features
      // (174 of k = 2048 kernel directions on the demo). The orthogonal one leaves out a single
      // random direction, almost surely not 1, is as unbiased (E P P^T = k1 I) and has a
      // smaller variance than signs; rejecting singular sign matrices would bias them.
      const std::uint64_t seed = mix_seed(settings.seed, ck, 2 * i + 1);
      b.p_out =
          b.k1 == rows - 1 ? scaled_orthogonal(rows, b.k1, seed) : rademacher(rows, b.k1, seed);
      scale /= std::sqrt(static_cast<float>(b.k1));
    }
    if (b.k2 < cols) {
      b.p_in = rademacher(cols, b.k2, mix_seed(settings.seed, ck, 2 * i + 2));
      scale /= std::sqrt(static_cast<float>(b.k2));
    }
    b.scale = scale;
    dim_ += b.k1 * b.k2;
    if (b.weight >= 0 && params[b.weight].tensor.dim() == 4) {  // a convolution's weight
      const auto w = params[b.weight].tensor.sizes();
      if (b.p_in.defined())
        b.conv_in = b.p_in.narrow(0, 0, w[1] * w[2] * w[3])
                        .t()
                        .reshape({b.k2, w[1], w[2], w[3]})
                        .contiguous();
    }
    if (b.p_out.defined()) b.p_out_t = b.p_out.t().contiguous();
    if (b.p_in.defined()) b.p_in_t = b.p_in.t().contiguous();
  }
  // Same overall scale as the dense projection: E ||phi||^2 = (k / p) ||g||^2.
  structured_scale_ = std::sqrt(static_cast<float>(dim_) / static_cast<float>(num_params_));
}

void Projector::to(const torch::Device& device) {
  if (dense_.defined()) dense_ = dense_.to(device);
  for (Block& b : blocks_) {
    if (b.p_out.defined()) b.p_out = b.p_out.to(device);
    if (b.p_in.defined()) b.p_in = b.p_in.to(device);
    if (b.conv_in.defined()) b.conv_in = b.conv_in.to(device);
    if (b.p_out_t.defined()) b.p_out_t = b.p_out_t.to(device);
    if (b.p_in_t.defined()) b.p_in_t = b.p_in_t.to(device);
  }
}

torch::Tensor Projector::project(const GraphGradients& graph, const Captured& c) const {
  if (kind_ == ProjectionKind::kDense) return graph.flat(c).mm(dense_);
  const auto& ops = graph.ops();
  const std::int64_t batch = c.logits.size(0);
  std::vector<torch::Tensor> acc(blocks_.size());
  std::vector<torch::Tensor> rest(graph.parameters().size());
  const auto add = [](torch::Tensor& sum, const torch::Tensor& t) {
    sum = sum.defined() ? sum + t : t;
  };
  for (std::size_t k = 0; k < ops.size(); ++k) {
    const ParamOp& op = ops[k];
    const std::vector<Contribution> parts = graph.contributions(k, c);
    torch::Tensor bias_direct;
    for (const Contribution& ct : parts)
      if (ct.param == op.bias) bias_direct = ct.direct;
    for (const Contribution& ct : parts) {
      const int bi = block_of_[ct.param];
      if (bi < 0) {
        add(rest[ct.param], ct.direct);
        continue;
      }
      const Block& b = blocks_[bi];
      if (ct.param != b.weight) continue;  // a paired bias: its column comes with the weight
      const bool ours = b.bias >= 0 && op.bias == b.bias;
      if (ct.full.defined()) {
        // P_out^T G P_in per example, both sides as GEMMs over the whole batch, in the cheaper
        // order.
        torch::Tensor g = ct.full;
        if (b.bias >= 0)
          g = torch::cat(
              {g, ours ? bias_direct.unsqueeze(2) : torch::zeros({batch, b.rows, 1}, g.options())},
              2);
        const auto right = [&](const torch::Tensor& x) {
          return b.p_in.defined()
                     ? x.reshape({-1, x.size(2)}).mm(b.p_in).view({batch, x.size(1), b.k2})
                     : x;
        };
        const auto left = [&](const torch::Tensor& x) {
          return b.p_out.defined() ? torch::matmul(b.p_out.t(), x) : x;
        };
        const double in_first = static_cast<double>(b.rows) * b.cols * b.k2 + b.k1 * b.rows * b.k2;
        const double out_first = static_cast<double>(b.k1) * b.rows * b.cols + b.k1 * b.cols * b.k2;
        add(acc[bi], in_first <= out_first ? left(right(g)) : right(left(g)));
        continue;
      }
      // sum_t (P_out^T L_t)(P_in^T R_t)^T: both factors projected, then one batched GEMM; the
      // per-example gradient of the block is never formed. A paired bias is a column of ones
      // on the right side: its projection is the last row of P_in, added to every column.
      if (ct.conv != nullptr) {
        // Convolutions: P_out^T Delta as a batched product, P_in^T U as a convolution of the
        // input with P_in's columns as filters (no im2col copy of the inputs).
        const ParamOp& conv = *ct.conv;
        const std::vector<std::int64_t> no_padding{0, 0};
        torch::Tensor r;
        if (b.conv_in.defined()) {
          r = torch::conv2d(ct.conv_input, b.conv_in, {}, conv.stride, no_padding, conv.dilation);
          r = r.reshape({batch, b.k2, -1});
          if (ours) r = r + b.p_in[b.cols - 1].view({1, b.k2, 1});
        } else {
          r = at::im2col(ct.conv_input, conv.kernel, conv.dilation, no_padding, conv.stride);
          if (b.bias >= 0)
            r = torch::cat({r, ours ? torch::ones({batch, 1, r.size(2)}, r.options())
                                    : torch::zeros({batch, 1, r.size(2)}, r.options())},
                           1);
        }
        const torch::Tensor l = b.p_out.defined() ? side(ct.left, b.p_out, b.p_out_t) : ct.left;
        add(acc[bi], torch::bmm(l, r.transpose(1, 2)));
        continue;
      }
      const torch::Tensor& right = ct.right;
      const std::int64_t t = right.size(2);
      torch::Tensor r;
      if (b.p_in.defined()) {
        r = b.bias >= 0
                ? side(right, b.p_in.narrow(0, 0, b.cols - 1), b.p_in_t.narrow(1, 0, b.cols - 1))
                : side(right, b.p_in, b.p_in_t);
        if (ours) r = r + b.p_in[b.cols - 1].view({1, b.k2, 1});
      } else {
        r = b.bias >= 0 ? torch::cat({right, ours ? torch::ones({batch, 1, t}, right.options())
                                                  : torch::zeros({batch, 1, t}, right.options())},
                                     1)
                        : right;
      }
      torch::Tensor l;
      if (ct.left.defined())
        l = b.p_out.defined() ? side(ct.left, b.p_out, b.p_out_t) : ct.left;
      else if (b.p_out.defined())  // one-hot rows (embedding): gather the projection's rows
        l = b.p_out.index_select(0, ct.left_index.reshape({-1}))
                .view({batch, t, b.k1})
                .transpose(1, 2);
      else
        l = torch::one_hot(ct.left_index, b.rows).to(r.dtype()).transpose(1, 2);
      add(acc[bi], torch::bmm(l, r.transpose(1, 2)));
    }
  }
  std::vector<torch::Tensor> out;
  const auto options = c.logits.options().dtype(torch::kFloat32);
  for (std::size_t bi = 0; bi < blocks_.size(); ++bi) {
    const Block& b = blocks_[bi];
    torch::Tensor block;
    if (b.weight >= 0) {
      block = acc[bi].defined() ? acc[bi] : torch::zeros({batch, b.k1, b.k2}, options);
    } else {
      std::vector<torch::Tensor> flat;
      for (int p : rest_)
        flat.push_back(rest[p].defined()
                           ? rest[p].reshape({batch, -1})
                           : torch::zeros({batch, graph.parameters()[p].tensor.numel()}, options));
      block = torch::cat(flat, 1);
      if (b.p_in.defined()) block = block.mm(b.p_in);
    }
    out.push_back(block.reshape({batch, -1}) * (b.scale * structured_scale_));
  }
  return torch::cat(out, 1);
}

}  // namespace modeldiff::core::detail
