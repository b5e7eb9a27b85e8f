// `modeldiff trak`: TRAK scores of one algorithm from its checkpoints, as a T x N .npy file.
#include <array>
#include <cstdio>
#include <memory>

#include "commands.h"
#include "console_progress.h"
#include "core/base/blas_check.h"
#include "core/base/error.h"
#include "core/base/threads.h"
#include "core/data/image_dataset.h"
#include "core/data/preprocessing.h"
#include "core/diff/significance.h"
#include "core/io/npy.h"
#include "core/pipeline/run_project.h"
#include "core/trak/torch_model.h"
#include "core/trak/trak.h"

namespace modeldiff::cli {
namespace {

struct TrakArgs {
  std::string model, train_images, train_labels, val_images, val_labels, out, cache;
  std::string projection = "structured", preprocessing, device = "cpu";
  std::vector<std::string> checkpoints;
  int proj_dim = 2048, threads = 0, batch_size = 256;
  std::uint64_t seed = 0;
  double lambda = 0;
  bool out_to_loss = false;
  std::string params;
  bool skip_normalization = false;
  bool halves = false;
};

// `<out without .npy>.split<s>.half<h>.npy` beside the scores.
std::string half_path(const std::string& out, int split, int half) {
  std::string stem = out;
  if (stem.size() > 4 && stem.compare(stem.size() - 4, 4, ".npy") == 0)
    stem.resize(stem.size() - 4);
  return stem + ".split" + std::to_string(split) + ".half" + std::to_string(half) + ".npy";
}

int run_trak(const TrakArgs& args) {
  core::set_compute_threads(args.threads);
  core::set_torch_threads(args.threads);
  ConsoleProgress progress;
  core::TrakSettings settings;
  settings.proj_dim = args.proj_dim;
  settings.seed = args.seed;
  settings.lambda = args.lambda;
  settings.out_to_loss = args.out_to_loss;
  settings.batch_size = args.batch_size;
  settings.device = args.device;
  settings.params = core::parse_param_patterns(args.params, args.skip_normalization);
  settings.projection =
      args.projection == "dense" ? core::ProjectionKind::kDense : core::ProjectionKind::kStructured;
  const core::Preprocessing prep = args.preprocessing.empty()
                                       ? core::Preprocessing{}
                                       : core::parse_preprocessing(args.preprocessing);

  const core::BlasInfo blas = core::probe_blas();
  if (blas.slow) std::fprintf(stderr, "modeldiff: warning: %s\n", core::describe(blas).c_str());
  progress.report(0.0, "loading data");
  const core::ImageDataset train = core::load_dataset(args.train_images, args.train_labels);
  const core::ImageDataset val = core::load_dataset(args.val_images, args.val_labels);
  core::TrakData data;
  data.train_inputs = core::preprocess(train, prep, 0, train.size());
  data.train_labels = train.labels;
  data.target_inputs = core::preprocess(val, prep, 0, val.size());
  data.target_labels = val.labels;

  core::Algorithm algorithm{"model", args.model, args.checkpoints};
  core::TrakReport report;
  core::TrakBlockSums blocks;
  if (args.halves) {
    const int m = static_cast<int>(args.checkpoints.size());
    if (m < core::kMinCheckpointsForSignificance)
      throw core::InputError("--checkpoints", "--halves splits the checkpoints into half ensembles")
          .expected("at least " + std::to_string(core::kMinCheckpointsForSignificance) +
                    " checkpoints (two halves of two or more)")
          .found(std::to_string(m));
    const std::array<int, 5> cuts = core::block_cuts(m);
    blocks.cuts.assign(cuts.begin(), cuts.end());
  }
  core::SubProgress sub(progress, 0.02, 1.0);
  const core::NdArray scores = core::trak_scores(algorithm, data, settings, args.cache, sub,
                                                 &report, args.halves ? &blocks : nullptr);
  core::write_npy(args.out, scores);
  std::vector<std::string> half_files;
  if (args.halves) {
    const core::BlockHalves bh = core::trak_half_ensembles(blocks, settings.out_to_loss);
    for (int s = 0; s < 3; ++s)
      for (int h = 0; h < 2; ++h) {
        half_files.push_back(half_path(args.out, s + 1, h + 1));
        core::write_npy(half_files.back(), bh.halves[s][h]);
      }
  }
  progress.finish();
  std::printf("%s\n", core::describe(settings).c_str());
  if (!report.attributed.empty()) std::printf("  %s\n", report.attributed.c_str());
  for (const auto& c : report.checkpoints)
    std::printf("  %s: target accuracy %.2f%%, %s\n", c.checkpoint.c_str(),
                100.0 * c.target_accuracy,
                c.from_cache ? "features from cache"
                             : ("featurized in " + std::to_string(c.seconds) + " s").c_str());
  for (const auto& c : report.checkpoints)
    if (c.kernel_dropped > 0)
      std::printf(
          "  note: %s: %lld of %lld kernel directions carry no training signal and were left "
          "out (pseudo-inverse); a positive --lambda regularises instead\n",
          c.checkpoint.c_str(), static_cast<long long>(c.kernel_dropped),
          static_cast<long long>(c.feature_dim));
  std::printf(
      "wrote %s: %lld x %lld scores (row = validation example, column = training "
      "example)\n",
      args.out.c_str(), static_cast<long long>(scores.dim(0)),
      static_cast<long long>(scores.dim(1)));
  if (!half_files.empty()) {
    std::printf(
        "wrote the half ensembles of 3 splits of the checkpoints into two halves, for the "
        "significance of directions; pass them to modeldiff diff as --scores-a-halves (or "
        "-b-halves)");
    for (const auto& f : half_files) std::printf(" %s", f.c_str());
    std::printf("\n");
  }
  return 0;
}

}  // namespace

Command add_trak_command(CLI::App& app) {
  auto args = std::make_shared<TrakArgs>();
  CLI::App* cmd = app.add_subcommand(
      "trak",
      "TRAK attribution scores of one algorithm from its checkpoints (T x N .npy, row = "
      "validation example).");
  cmd->add_option("--model", args->model,
                  "TorchScript architecture (torch.jit.script(model).save); omit when the "
                  "checkpoints are full TorchScript models");
  cmd->add_option("--checkpoints", args->checkpoints,
                  "Checkpoint files: torch.save state dicts (OrderedDict, nested, module. "
                  "prefix), safetensors, or full TorchScript models")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--train-images", args->train_images,
                  "Training images: IDX, .npy (N x H x W [x C] uint8 or N x C x H x W float32) "
                  "or a folder of class sub-folders")
      ->required();
  cmd->add_option("--train-labels", args->train_labels, "Training labels (IDX, .npy, text)");
  cmd->add_option("--val-images", args->val_images, "Validation (target) images")->required();
  cmd->add_option("--val-labels", args->val_labels, "Validation labels");
  cmd->add_option("--proj-dim", args->proj_dim, "Projection dimension k")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--projection", args->projection,
                  "structured (per-layer Kronecker, fast) or dense (p x k Rademacher)")
      ->capture_default_str()
      ->check(CLI::IsMember({"structured", "dense"}));
  cmd->add_option("--seed", args->seed, "Projection seed")->capture_default_str();
  cmd->add_option("--lambda", args->lambda, "Ridge term of the kernel")->capture_default_str();
  cmd->add_option("--params", args->params,
                  "Attribute only the parameters whose names match these glob patterns, e.g. "
                  "'layer4.*,fc.*' (default: every trainable parameter)");
  cmd->add_flag("--skip-normalization", args->skip_normalization,
                "Leave the parameters of BatchNorm and LayerNorm out of the attribution");
  cmd->add_flag("--out-to-loss", args->out_to_loss,
                "Scale training columns by TRAK's out-to-loss weights 1 - p_y, as traker does "
                "(default: Q = 1, which ranks training examples better; see the README)");
  cmd->add_option("--preprocess", args->preprocessing,
                  "Preprocessing, e.g. 'scale=1/255,mean=0.5,std=0.25,resize=32x32' (default: "
                  "uint8 / 255)");
  cmd->add_option("--batch-size", args->batch_size, "Examples per batch")->capture_default_str();
  cmd->add_option("--cache", args->cache,
                  "Folder for per-checkpoint features: an interrupted run resumes from it");
  cmd->add_option("--device", args->device,
                  "Where the models run: cpu, cuda or cuda:N (the kernel solve stays on the CPU)")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "Threads (0 = all cores)")->capture_default_str();
  cmd->add_flag("--halves", args->halves,
                "Also write the half ensembles of 3 splits of the checkpoints (OUT.split<s>."
                "half<h>.npy, at no extra TRAK cost) for modeldiff diff --scores-a-halves; "
                "needs at least 4 checkpoints");
  cmd->add_option("-o,--out", args->out, "Output .npy file (T x N float32)")->required();
  return [args] { return run_trak(*args); };
}

}  // namespace modeldiff::cli
