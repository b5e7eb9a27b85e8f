// `modeldiff diff`: distinguishing directions from two precomputed score matrices.
#include <algorithm>
#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <utility>

#include "commands.h"
#include "console_progress.h"
#include "core/base/error.h"
#include "core/base/output_directory.h"
#include "core/base/sha256.h"
#include "core/base/threads.h"
#include "core/diff/diff_output.h"
#include "core/diff/model_diff.h"
#include "core/io/array_file.h"

namespace modeldiff::cli {
namespace {

struct DiffArgs {
  std::string scores_a, scores_b, key, key_a, key_b, transpose = "auto";
  std::string label_a = "A", label_b = "B";
  std::string labels, rows, out, solver = "auto";
  std::int64_t klass = -1, num_train = -1;
  int components = 10, top_k = 10, threads = 0;
  bool raw_rows = false;
  std::string rotation = "varimax";  // the known-answer benchmark's choice (README)
  std::uint64_t seed = 0;
  // Per-half score files (two each) for the significance of directions.
  std::vector<std::string> halves_a, halves_b;
};

// Without checkpoints to split, significance comes from per-half score files or is absent.
const char* const kNoHalves =
    "not computed: score files have no checkpoints to split; pass each algorithm's two "
    "half-ensemble score files (--scores-a-halves F1 F2 --scores-b-halves F1 F2), which "
    "modeldiff trak --halves writes";

core::Transpose parse_transpose(const std::string& s) {
  if (s == "yes") return core::Transpose::kYes;
  if (s == "no") return core::Transpose::kNo;
  return core::Transpose::kAuto;
}

core::PcaSolver parse_solver(const std::string& s) {
  if (s == "exact") return core::PcaSolver::kExact;
  if (s == "randomized") return core::PcaSolver::kRandomized;
  return core::PcaSolver::kAuto;
}

core::InputProvenance provenance_of(const std::string& path, const std::string& key,
                                    const core::NdArray& loaded, std::string sha256) {
  core::InputProvenance p;
  p.path = path;
  p.key = key;
  p.format = core::format_name(core::detect_format(path));
  p.sha256 = std::move(sha256);
  for (const auto& e : core::list_arrays(path))
    if (e.key == key || key.empty()) {
      p.file_shape = e.shape;
      break;
    }
  // A traker save_dir is stored N x T and read as T x N.
  const bool traker = p.format == core::format_name(core::FileFormat::kTrakerSaveDir);
  const std::vector<std::int64_t> as_read =
      traker ? std::vector<std::int64_t>{loaded.dim(1), loaded.dim(0)} : p.file_shape;
  p.transposed = traker || (as_read.size() == 2 && as_read[0] != loaded.dim(0));
  return p;
}

int run_diff(const DiffArgs& args, const std::string& command_line) {
  core::set_compute_threads(args.threads);
  // Check the output location before any long work, so a typo fails in a second.
  core::OutputDirectory out(args.out);
  ConsoleProgress progress;

  core::DiffOptions options;
  options.components = args.components;
  options.normalize_rows = !args.raw_rows;
  options.rotation = core::parse_rotation(args.rotation);
  options.top_k = args.top_k;
  options.solver = parse_solver(args.solver);
  options.seed = args.seed;

  core::ScoreShapeHint hint;
  hint.num_train = args.num_train;
  if (args.num_train >= 0) hint.source = "--num-train";
  core::DiffProvenance provenance;
  provenance.command_line = command_line;
  if (!args.labels.empty()) {
    const std::vector<std::int64_t> labels = core::load_integer_vector(args.labels);
    hint.num_targets = static_cast<std::int64_t>(labels.size());
    hint.source = std::to_string(labels.size()) + " labels in " + args.labels;
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == args.klass) options.target_rows.push_back(static_cast<std::int64_t>(i));
    if (options.target_rows.empty())
      throw core::InputError(args.labels, "no target has class " + std::to_string(args.klass));
    provenance.target_selection = "targets of class " + std::to_string(args.klass) + " in " +
                                  args.labels + " (" + std::to_string(options.target_rows.size()) +
                                  " rows)";
  } else if (!args.rows.empty()) {
    options.target_rows = core::load_integer_vector(args.rows);
    std::sort(options.target_rows.begin(), options.target_rows.end());
    const auto dup = std::adjacent_find(options.target_rows.begin(), options.target_rows.end());
    if (dup != options.target_rows.end())
      throw core::InputError(args.rows, "row " + std::to_string(*dup) + " is listed twice");
    provenance.target_selection =
        "rows listed in " + args.rows + " (" + std::to_string(options.target_rows.size()) + ")";
  }

  // The inputs' SHA-256 (for the provenance) is computed beside the work, not before it: the
  // same bytes, read while the diff runs.
  // One thread for both files (hashed side by side), so that the compute threads keep their
  // cores.
  std::future<std::pair<std::string, std::string>> hashes;
  const auto start_hashing = [&] {
    hashes = std::async(std::launch::async,
                        [&] { return core::sha256_two_paths(args.scores_a, args.scores_b); });
  };
  // An HDF5 input is probed in a forked child process (child_process.h), and no other thread
  // may run at a fork: one that allocates, or only exits, can leave an allocator that is not
  // fork-safe (the sanitizers') locked in the child for ever. Such inputs are hashed after
  // they are loaded.
  const auto probed_in_a_child = [](const std::string& path) {
    try {
      return core::detect_format(path) == core::FileFormat::kHdf5;
    } catch (const core::InputError&) {
      return false;  // the load says what is wrong with it
    }
  };
  const bool hash_after_loading =
      probed_in_a_child(args.scores_a) || probed_in_a_child(args.scores_b);
  if (!hash_after_loading) start_hashing();
  const std::string key_a = args.key_a.empty() ? args.key : args.key_a;
  const std::string key_b = args.key_b.empty() ? args.key : args.key_b;
  const core::Transpose transpose = parse_transpose(args.transpose);
  progress.report(0.0, "loading " + args.scores_a);
  core::ScoreInput a{args.label_a, args.scores_a,
                     core::load_score_matrix(args.scores_a, key_a, transpose, hint)};
  // B must match A's orientation: A's shape settles B's when no dataset size is known.
  core::ScoreShapeHint hint_b = hint;
  if (hint_b.num_targets < 0) hint_b.num_targets = a.scores.dim(0);
  if (hint_b.num_train < 0) hint_b.num_train = a.scores.dim(1);
  hint_b.source = "the shape of " + args.scores_a;
  progress.report(0.02, "loading " + args.scores_b);
  core::ScoreInput b{args.label_b, args.scores_b,
                     core::load_score_matrix(args.scores_b, key_b, transpose, hint_b)};
  if (hash_after_loading) start_hashing();

  if (!args.labels.empty() && hint.num_targets != a.scores.dim(0))
    throw core::InputError(args.labels, "number of labels differs from the number of targets")
        .expected(std::to_string(a.scores.dim(0)) + " (rows of " + args.scores_a + ")")
        .found(std::to_string(hint.num_targets));

  core::SubProgress diff_progress(progress, 0.05, args.halves_a.empty() ? 0.97 : 0.9);
  core::DiffResult diffed = core::run_model_diff(a, b, options, diff_progress);
  auto [sha_a, sha_b] = hashes.get();  // the thread is joined: the halves may be HDF5 too
  provenance.a = provenance_of(args.scores_a, key_a, a.scores, std::move(sha_a));
  provenance.b = provenance_of(args.scores_b, key_b, b.scores, std::move(sha_b));

  core::DiffResult result = std::move(diffed);
  if (args.halves_a.empty()) {
    result.significance.reason = kNoHalves;
  } else {
    // Each pair of files is one split; the halves are read as A and B were (same keys, B's
    // orientation settled by A's shape).
    if (args.halves_a.size() % 2 != 0 || args.halves_a.size() != args.halves_b.size())
      throw core::InputError("--scores-a-halves / --scores-b-halves",
                             "half-ensemble score files come in pairs, one pair per split")
          .expected("the same even number of files for A and for B")
          .found(std::to_string(args.halves_a.size()) + " for A, " +
                 std::to_string(args.halves_b.size()) + " for B");
    std::vector<core::HalfSplit> splits(args.halves_a.size() / 2);
    for (std::size_t i = 0; i < args.halves_a.size(); ++i) {
      core::HalfSplit& split = splits[i / 2];
      const int h = static_cast<int>(i % 2);
      progress.report(0.9, "loading " + args.halves_a[i]);
      split.a[h] = core::load_score_matrix(args.halves_a[i], key_a, transpose, hint_b);
      split.source_a[h] = args.halves_a[i];
      progress.report(0.9, "loading " + args.halves_b[i]);
      split.b[h] = core::load_score_matrix(args.halves_b[i], key_b, transpose, hint_b);
      split.source_b[h] = args.halves_b[i];
    }
    core::SubProgress sig_progress(progress, 0.9, 0.97, "significance");
    result.significance = core::compute_significance(result, splits, options, sig_progress);
  }

  progress.report(0.97, "writing " + args.out);
  core::write_diff_output(out, result, options, provenance);
  out.commit();
  progress.report(1.0, "done");
  progress.finish();

  std::fputs(core::format_direction_table(result).c_str(), stdout);
  std::printf("wrote %s/diff.h5 and %s/summary.json\n", out.dir().c_str(), out.dir().c_str());
  return 0;
}

}  // namespace

Command add_diff_command(CLI::App& app, const std::string& command_line) {
  auto args = std::make_shared<DiffArgs>();
  CLI::App* cmd = app.add_subcommand(
      "diff",
      "Distinguishing directions of A minus B and B minus A from two score matrices (T x N, "
      "row = target/validation example, column = training example).");
  cmd->add_option("--scores-a", args->scores_a,
                  "A's scores: .npy, .pt/.pth (torch.save), .safetensors, .h5 or a traker save_dir")
      ->required();
  cmd->add_option("--scores-b", args->scores_b, "B's scores (same formats and shape as A)")
      ->required();
  cmd->add_option("-c,--components", args->components, "Number of principal components")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--raw-rows", args->raw_rows,
                "Do not scale rows to unit norm before the residual (the modeldiff package's "
                "behaviour; default: unit-norm rows as in the paper)");
  cmd->add_option("--rotation", args->rotation,
                  "none: the principal directions of the residuals (the reference's); varimax: "
                  "those directions rotated towards sparse loadings (see the README's known-"
                  "answer benchmark)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "varimax"}));
  cmd->add_option("--key", args->key,
                  "Array to read inside container files (torch dict key, safetensors/HDF5 name, "
                  "traker experiment); default: the only array or 'weight'");
  cmd->add_option("--key-a", args->key_a, "Like --key, for A only");
  cmd->add_option("--key-b", args->key_b, "Like --key, for B only");
  cmd->add_option("--transpose", args->transpose,
                  "Whether the files hold N x T: auto (decide from --labels/--num-train sizes), "
                  "yes, no")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "yes", "no"}));
  auto* labels = cmd->add_option("--labels", args->labels,
                                 "Labels of the target examples (one per row), with --class");
  auto* klass = cmd->add_option("--class", args->klass, "Analyse only targets of this class");
  labels->needs(klass);
  klass->needs(labels);
  cmd->add_option("--rows", args->rows,
                  "Analyse only these target rows (text list or integer array file)")
      ->excludes(labels);
  cmd->add_option("--num-train", args->num_train,
                  "Number of training examples N (settles the orientation with --transpose auto)");
  cmd->add_option("--label-a", args->label_a, "Name of algorithm A in outputs")
      ->capture_default_str();
  cmd->add_option("--label-b", args->label_b, "Name of algorithm B in outputs")
      ->capture_default_str();
  cmd->add_option("--top-k", args->top_k, "Indices kept per direction in the outputs")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--solver", args->solver,
                  "PCA solver: auto (exact for small inputs, randomised for large), exact, "
                  "randomized")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "exact", "randomized"}));
  cmd->add_option("--seed", args->seed, "Seed of the randomised solver")->capture_default_str();
  cmd->add_option("--threads", args->threads, "Compute threads (0 = all cores)")
      ->capture_default_str();
  auto* halves_a = cmd->add_option("--scores-a-halves", args->halves_a,
                                   "Score files of A's half ensembles, two per split (disjoint "
                                   "halves of its checkpoints), for the significance of every "
                                   "direction; one split has a high false-positive rate, see "
                                   "README")
                       ->expected(2, 1 << 20);
  auto* halves_b = cmd->add_option("--scores-b-halves", args->halves_b,
                                   "Score files of B's half ensembles, two per split, in the "
                                   "order of --scores-a-halves")
                       ->expected(2, 1 << 20);
  halves_a->needs(halves_b);
  halves_b->needs(halves_a);
  cmd->add_option("-o,--out", args->out, "Output directory (diff.h5, summary.json)")->required();
  return [args, command_line] { return run_diff(*args, command_line); };
}

}  // namespace modeldiff::cli
