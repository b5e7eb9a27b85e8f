// _modeldiff: the compiled half of the Python package `modeldiff` (python/modeldiff/).
//
// Binds core::run_model_diff. Score matrices cross as numpy arrays, T x N (row = target
// example, column = training example); float32 C-contiguous ones are read in place, anything
// else is converted by numpy once. Results come back as numpy arrays that take over the
// core's Eigen buffers (no copy). The computation runs without the GIL; core::InputError
// becomes modeldiff.InputError, a ValueError, and Ctrl-C cancels the computation and raises
// KeyboardInterrupt.
#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/base/error.h"
#include "core/base/ndarray.h"
#include "core/base/output_directory.h"
#include "core/base/progress.h"
#include "core/diff/diff_output.h"
#include "core/diff/model_diff.h"
#include "core/diff/significance.h"
#include "interrupt_check.h"

namespace py = pybind11;
namespace core = modeldiff::core;

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// A view of the array's bytes, no copy. No owner: the array is an argument of the call that
// uses the view and so outlives it.
core::NdArray borrow(const FloatArray& array) {
  std::vector<std::int64_t> shape(array.shape(), array.shape() + array.ndim());
  return core::NdArray(core::DType::kFloat32, std::move(shape), nullptr,
                       reinterpret_cast<const std::byte*>(array.data()));
}

core::PcaSolver parse_solver(const std::string& name) {
  if (name == "auto") return core::PcaSolver::kAuto;
  if (name == "exact") return core::PcaSolver::kExact;
  if (name == "randomized") return core::PcaSolver::kRandomized;
  throw core::InputError("", "unknown PCA solver '" + name + "'")
      .expected("'auto', 'exact' or 'randomized'");
}

// Rows of equal length (C lists of k indices) as a C x k int64 array.
py::array_t<std::int64_t> index_matrix(const std::vector<std::vector<std::int64_t>>& rows) {
  const auto k = static_cast<py::ssize_t>(rows.empty() ? 0 : rows.front().size());
  py::array_t<std::int64_t> out({static_cast<py::ssize_t>(rows.size()), k});
  auto view = out.mutable_unchecked<2>();
  for (py::ssize_t c = 0; c < view.shape(0); ++c)
    for (py::ssize_t j = 0; j < k; ++j) view(c, j) = rows[static_cast<std::size_t>(c)][j];
  return out;
}

py::dict to_dict(core::DirectionSet&& set) {
  py::dict d;
  d["first"] = set.first;
  d["second"] = set.second;
  d["directions"] = py::cast(std::move(set.directions));    // C x N float32, unit rows
  d["projections"] = py::cast(std::move(set.projections));  // T x C float32
  d["explained_variance"] = py::cast(std::move(set.explained_variance));
  d["explained_variance_ratio"] = py::cast(std::move(set.explained_variance_ratio));
  d["variance_a"] = py::cast(std::move(set.variance_a));
  d["variance_b"] = py::cast(std::move(set.variance_b));
  d["top_train"] = index_matrix(set.top_train);
  d["bottom_train"] = index_matrix(set.bottom_train);
  d["top_target"] = index_matrix(set.top_target);
  d["bottom_target"] = index_matrix(set.bottom_target);
  d["solver"] = set.solver;
  d["iterations"] = set.iterations;
  d["converged"] = set.converged;
  return d;
}

py::dict to_dict(const core::DirectionSignificance& d) {
  py::dict out;
  out["noise_floor"] = d.noise_floor;
  out["half_explained_variance"] = d.half_explained_variance;
  out["null_explained_variance"] = d.null_explained_variance;
  out["floor_ratio"] = d.floor_ratio;
  py::list above, verdict;
  for (bool b : d.above_floor) {
    above.append(b);
    verdict.append(core::significance_verdict(b));
  }
  out["above_noise_floor"] = above;
  out["verdict"] = verdict;
  out["reproducibility"] = d.reproducibility;
  out["reproducibility_std"] = d.reproducibility_std;
  out["rank_stable"] = d.rank_stable;
  out["full_match"] = d.full_match;
  return out;
}

py::dict to_dict(const core::Significance& s) {
  py::dict out;
  out["computed"] = s.computed;
  out["reason"] = s.reason;
  out["rule"] = core::kSignificanceRule;
  out["splits"] = s.splits;
  out["half_checkpoints_a"] = py::make_tuple(s.checkpoints_a[0], s.checkpoints_a[1]);
  out["half_checkpoints_b"] = py::make_tuple(s.checkpoints_b[0], s.checkpoints_b[1]);
  if (s.computed) {
    out["a_minus_b"] = to_dict(s.a_minus_b);
    out["b_minus_a"] = to_dict(s.b_minus_a);
  }
  return out;
}

// Half-ensemble pairs of one algorithm, one (half 1, half 2) pair per split.
using HalfPairs = std::vector<std::pair<FloatArray, FloatArray>>;

py::dict model_diff(const FloatArray& scores_a, const FloatArray& scores_b, std::int64_t components,
                    bool normalize_rows, int top_k, const std::string& solver, std::uint64_t seed,
                    const std::string& label_a, const std::string& label_b,
                    const std::string& source_a, const std::string& source_b,
                    const std::string& out_dir, const py::dict& provenance,
                    const HalfPairs& halves_a, const HalfPairs& halves_b,
                    const std::vector<std::pair<int, int>>& half_checkpoints_a,
                    const std::vector<std::pair<int, int>>& half_checkpoints_b,
                    const std::string& significance_reason) {
  if (halves_a.size() != halves_b.size())
    throw core::InputError("halves", "A and B need the same number of half-ensemble splits")
        .expected("one (half 1, half 2) pair per split for each algorithm")
        .found(std::to_string(halves_a.size()) + " for A, " + std::to_string(halves_b.size()) +
               " for B");
  if (components < 1 || components > std::numeric_limits<int>::max())
    throw core::InputError("", "number of components is out of range")
        .expected("at least 1 and at most the number of targets and of training examples")
        .found(std::to_string(components));
  core::DiffOptions options;
  options.components = static_cast<int>(components);
  options.normalize_rows = normalize_rows;
  options.top_k = top_k;
  options.solver = parse_solver(solver);
  options.seed = seed;
  const core::ScoreInput a{label_a, source_a, borrow(scores_a)};
  const core::ScoreInput b{label_b, source_b, borrow(scores_b)};

  std::vector<core::HalfSplit> splits(halves_a.size());
  for (std::size_t i = 0; i < splits.size(); ++i) {
    core::HalfSplit& h = splits[i];
    h.a[0] = borrow(halves_a[i].first);
    h.a[1] = borrow(halves_a[i].second);
    h.b[0] = borrow(halves_b[i].first);
    h.b[1] = borrow(halves_b[i].second);
    for (int k = 0; k < 2; ++k) {
      const std::string which =
          " half " + std::to_string(k + 1) + " of split " + std::to_string(i + 1);
      h.source_a[k] = source_a + which;
      h.source_b[k] = source_b + which;
    }
    if (i < half_checkpoints_a.size())
      std::tie(h.checkpoints_a[0], h.checkpoints_a[1]) = half_checkpoints_a[i];
    if (i < half_checkpoints_b.size())
      std::tie(h.checkpoints_b[0], h.checkpoints_b[1]) = half_checkpoints_b[i];
  }

  // Checked before the work, so a folder that cannot be written fails at once.
  std::optional<core::OutputDirectory> out;
  if (!out_dir.empty()) out.emplace(out_dir);
  modeldiff::python::InterruptCheck progress;
  core::DiffResult result;
  bool cancelled = false;
  {
    py::gil_scoped_release release;
    try {
      result = core::run_model_diff(a, b, options, progress);
      if (!splits.empty())
        result.significance = core::compute_significance(result, splits, options, progress);
      else
        result.significance.reason = significance_reason;
    } catch (const core::Cancelled&) {
      cancelled = true;
    }
  }
  if (cancelled) progress.rethrow();
  if (out) {
    core::DiffProvenance p;
    for (auto [key, input] : {std::pair{"a", &p.a}, std::pair{"b", &p.b}}) {
      const py::dict about =
          provenance.contains(key) ? provenance[key].cast<py::dict>() : py::dict();
      input->path = about.contains("path") ? about["path"].cast<std::string>() : "";
      input->sha256 = about.contains("sha256") ? about["sha256"].cast<std::string>() : "";
      input->format = about.contains("format") ? about["format"].cast<std::string>() : "";
      input->file_shape = (key[0] == 'a' ? a : b).scores.shape();
    }
    if (provenance.contains("command_line"))
      p.command_line = provenance["command_line"].cast<std::string>();
    core::write_diff_output(*out, result, options, p);
    out->commit();
  }

  py::dict d;
  d["label_a"] = result.label_a;
  d["label_b"] = result.label_b;
  d["normalized_rows"] = result.normalized_rows;
  d["cosine_ab"] = py::cast(std::move(result.cosine_ab));  // T float32
  d["a_minus_b"] = to_dict(std::move(result.a_minus_b));
  d["b_minus_a"] = to_dict(std::move(result.b_minus_a));
  d["significance"] = to_dict(result.significance);
  return d;
}

// The three half-ensemble splits of four blocks of checkpoints (core::block_halves): block
// sums T x N, the block cuts (5), the blocks' out-to-loss sums (N each) or None for Q = 1.
// Returns [(half 1, half 2)] per split and [(checkpoints, checkpoints)] per split.
py::tuple block_halves(const std::vector<FloatArray>& sums, const std::vector<int>& cuts,
                       const std::optional<std::vector<std::vector<double>>>& out_to_loss) {
  if (sums.size() != 4 || cuts.size() != 5 || (out_to_loss && out_to_loss->size() != 4))
    throw core::InputError("", "block_halves needs four blocks")
        .expected("4 block sums, 5 cuts, 4 out-to-loss sums")
        .found(std::to_string(sums.size()) + ", " + std::to_string(cuts.size()));
  std::array<core::NdArray, 4> blocks;
  std::array<std::vector<double>, 4> q;
  std::array<int, 5> c{};
  for (std::size_t k = 0; k < 4; ++k) {
    blocks[k] = borrow(sums[k]);
    if (blocks[k].ndim() != 2 || blocks[k].shape() != borrow(sums[0]).shape())
      throw core::InputError("", "block sums must be T x N matrices of one shape");
    if (out_to_loss) {
      q[k] = (*out_to_loss)[k];
      if (static_cast<std::int64_t>(q[k].size()) != blocks[k].dim(1))
        throw core::InputError("", "out-to-loss sums do not match the block sums")
            .expected(std::to_string(blocks[k].dim(1)))
            .found(std::to_string(q[k].size()));
    }
  }
  for (std::size_t k = 0; k < 5; ++k) c[k] = cuts[k];
  const core::BlockHalves bh = core::block_halves(blocks, c, out_to_loss ? &q : nullptr);
  py::list halves, sizes;
  const auto to_numpy = [](const core::NdArray& a) {
    py::array_t<float> out({a.dim(0), a.dim(1)});
    std::memcpy(out.mutable_data(), a.data(), a.nbytes());
    return out;
  };
  for (int s = 0; s < 3; ++s) {
    halves.append(py::make_tuple(to_numpy(bh.halves[s][0]), to_numpy(bh.halves[s][1])));
    sizes.append(py::make_tuple(bh.sizes[s][0], bh.sizes[s][1]));
  }
  return py::make_tuple(halves, sizes);
}

}  // namespace

PYBIND11_MODULE(_modeldiff, m) {
  m.doc() = "ModelDiff Studio's C++ core (use the package modeldiff, not this module)";
  m.attr("__version__") = MODELDIFF_VERSION;
  py::register_exception<core::InputError>(m, "InputError", PyExc_ValueError);
  m.def("model_diff", &model_diff, py::arg("scores_a"), py::arg("scores_b"), py::kw_only(),
        py::arg("components"), py::arg("normalize_rows") = true, py::arg("top_k") = 10,
        py::arg("solver") = "auto", py::arg("seed") = 0, py::arg("label_a") = "A",
        py::arg("label_b") = "B", py::arg("source_a") = "scores A",
        py::arg("source_b") = "scores B", py::arg("out_dir") = "",
        py::arg("provenance") = py::dict(), py::arg("halves_a") = HalfPairs{},
        py::arg("halves_b") = HalfPairs{},
        py::arg("half_checkpoints_a") = std::vector<std::pair<int, int>>{},
        py::arg("half_checkpoints_b") = std::vector<std::pair<int, int>>{},
        py::arg("significance_reason") = "",
        R"doc(ModelDiff of two T x N score matrices (row = target, column = training example).

Returns a dict with 'a_minus_b' and 'b_minus_a' (each: 'directions' C x N, 'projections'
T x C, 'explained_variance', 'explained_variance_ratio', 'variance_a', 'variance_b' (always
the variance of the scores given as A, resp. B), 'top_train', 'bottom_train', 'top_target',
'bottom_target' (C x top_k indices), 'first', 'second', 'solver', 'iterations', 'converged'),
'cosine_ab' (T), 'label_a', 'label_b' and 'normalized_rows'. Raises InputError (a ValueError)
for bad input. With out_dir, also writes the result folder of `modeldiff diff` there (diff.h5,
summary.json); provenance: {'a': {'path', 'sha256', 'format'}, 'b': {...}, 'command_line'}.
With halves_a and halves_b (one (half 1, half 2) pair of T x N half-ensemble scores per split,
as many for B as for A), 'significance' holds the significance of every direction
(core/diff/significance.h); otherwise it says why not (significance_reason).)doc");
  m.def(
      "block_cuts",
      [](int checkpoints) {
        if (checkpoints < core::kMinCheckpointsForSignificance)
          throw core::InputError("", "too few checkpoints to split into halves")
              .expected("at least " + std::to_string(core::kMinCheckpointsForSignificance))
              .found(std::to_string(checkpoints));
        const std::array<int, 5> c = core::block_cuts(checkpoints);
        return std::vector<int>(c.begin(), c.end());
      },
      py::arg("checkpoints"), "Cuts of m >= 4 checkpoints into four consecutive blocks.");
  m.def("significance_absence", &core::significance_absence, py::arg("label"),
        py::arg("checkpoints"), "Why an algorithm with that many checkpoints has no significance.");
  m.def("block_halves", &block_halves, py::arg("block_sums"), py::arg("cuts"),
        py::arg("out_to_loss_sums") = py::none(),
        "The three half-ensemble splits of four blocks of checkpoints (see block_cuts).");
}
