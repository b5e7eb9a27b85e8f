// `modeldiff counterfactual`: apply a transformation to validation images and measure how the
// predictions of A's and of B's checkpoints move (effects.json, effects.csv, effects.png).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <sstream>

#include "commands.h"
#include "console_progress.h"
#include "core/base/error.h"
#include "core/base/threads.h"
#include "core/data/image_dataset.h"
#include "core/data/preprocessing.h"
#include "core/data/transform.h"
#include "core/diff/diff_summary.h"
#include "core/io/array_file.h"
#include "core/pipeline/counterfactual.h"
#include "core/pipeline/project.h"
#include "core/trak/torch_model.h"

namespace modeldiff::cli {
namespace {

struct CounterfactualArgs {
  core::ModelSet a, b;
  std::string images, labels, transform, preprocessing, out, sweep;
  std::string indices_file, direction_dir, direction = "a_minus_b:1";
  int direction_k = 0;  // 0: all the result keeps (its top-k)
  std::int64_t target_class = -1, only_class = -1, exclude_class = -1, max_images = 0;
  std::uint64_t seed = 0;
  int threads = 0;
};

// "size=0,1,3,5" -> {0, 1, 3, 5} (the key is the transformation's strength key).
std::vector<double> parse_sweep(const std::string& text) {
  if (text.empty()) return {};
  const auto eq = text.find('=');
  std::vector<double> values;
  std::istringstream in(eq == std::string::npos ? text : text.substr(eq + 1));
  std::string part;
  while (std::getline(in, part, ',')) {
    try {
      std::size_t used = 0;
      values.push_back(std::stod(part, &used));
      if (used != part.size()) throw std::invalid_argument(part);
    } catch (const std::exception&) {
      throw core::InputError("", "--sweep takes numbers").expected("KEY=V1,V2,...").found(text);
    }
  }
  return values;
}

int run_counterfactual(const CounterfactualArgs& args) {
  core::set_compute_threads(args.threads);
  core::set_torch_threads(args.threads);
  const core::Transform transform = core::parse_transform(args.transform);
  const std::vector<double> sweep = parse_sweep(args.sweep);
  const core::Preprocessing prep = args.preprocessing.empty()
                                       ? core::Preprocessing{}
                                       : core::parse_preprocessing(args.preprocessing);
  ConsoleProgress progress;
  progress.report(0.0, "loading images");
  const core::ImageDataset all = core::load_dataset(args.images, args.labels);
  // The candidate images: an index list, a direction's top validation examples, or all.
  std::vector<std::int64_t> candidates;
  if (!args.indices_file.empty()) {
    candidates = core::load_integer_vector(args.indices_file);
  } else if (!args.direction_dir.empty()) {
    const core::DiffSummary summary = core::read_diff_summary(args.direction_dir);
    if (summary.num_targets != all.size())
      throw core::InputError(args.images, "the images are not the result's validation set")
          .expected(std::to_string(summary.num_targets) + " images, as in " + args.direction_dir)
          .found(std::to_string(all.size()));
    const std::optional<core::DirectionRef> dir = core::parse_direction(
        args.direction.find(':') == std::string::npos ? args.direction + ":1" : args.direction);
    const core::DirectionSummary* ds = !dir             ? nullptr
                                       : dir->a_minus_b ? &summary.a_minus_b
                                                        : &summary.b_minus_a;
    const int component =
        ds == nullptr ? -1
                      : core::resolve_direction(*dir, ds->top_target, all.labels, args.direction_k);
    if (component < 0)
      throw core::InputError(args.direction_dir, "no such direction")
          .expected("a_minus_b:C or b_minus_a:C with C in 1.." +
                    std::to_string(summary.a_minus_b.top_target.size()) +
                    ", or SET:class=K naming a class that most of a direction's top validation "
                    "images have")
          .found(args.direction);
    if (dir->of_class >= 0)
      std::fprintf(stderr, "%s is direction %d of the result\n", args.direction.c_str(),
                   component + 1);
    const auto& top = ds->top_target[static_cast<std::size_t>(component)];
    if (args.direction_k > static_cast<int>(top.size()))
      throw core::InputError(args.direction_dir, "the result keeps fewer top validation examples")
          .key("--direction-k")
          .expected("at most " + std::to_string(top.size()) +
                    " (the result's top-k; `modeldiff diff --top-k` or the project's diff.top_k "
                    "keep more)")
          .found(std::to_string(args.direction_k));
    const std::size_t k =
        args.direction_k > 0 ? static_cast<std::size_t>(args.direction_k) : top.size();
    candidates.assign(top.begin(), top.begin() + static_cast<std::ptrdiff_t>(k));
  } else {
    for (std::int64_t i = 0; i < all.size(); ++i) candidates.push_back(i);
  }
  std::vector<std::int64_t> chosen;
  for (const std::int64_t i : candidates) {
    if (i < 0 || i >= all.size())
      throw core::InputError(args.indices_file.empty() ? args.direction_dir : args.indices_file,
                             "image index out of range")
          .expected("0 to " + std::to_string(all.size() - 1))
          .found(std::to_string(i));
    const std::int64_t y = all.labels[static_cast<std::size_t>(i)];
    if (args.only_class >= 0 && y != args.only_class) continue;
    if (args.exclude_class >= 0 && y == args.exclude_class) continue;
    chosen.push_back(i);
    if (args.max_images > 0 && static_cast<std::int64_t>(chosen.size()) >= args.max_images) break;
  }
  if (chosen.empty())
    throw core::InputError(args.images, "no image is left after the class selection")
        .expected("images of class " + std::to_string(args.only_class) + " / not of class " +
                  std::to_string(args.exclude_class));
  const core::ImageDataset images = core::subset(all, chosen);
  core::SubProgress sub(progress, 0.05, 1.0);
  const core::CounterfactualResult r = core::run_counterfactual(
      args.a, args.b, images, prep, transform, sweep, args.target_class, args.seed, sub);
  core::write_counterfactual(args.out, r);
  progress.finish();
  std::printf("%s on %lld images, target class %lld\n", r.transform.c_str(),
              static_cast<long long>(images.size()), static_cast<long long>(r.target_class));
  std::printf("%-28s %9s %24s %14s\n", "algorithm", "strength", "change in P(target) [95%]",
              "become target");
  for (const auto& row : r.rows)
    std::printf("%-28s %9g %+9.4f [%+.4f, %+.4f] %13.1f%%\n",
                (row.algorithm + ": " + row.label).substr(0, 28).c_str(), row.strength,
                row.mean_delta_p, row.ci_low, row.ci_high, 100.0 * row.flip_fraction);
  std::printf("wrote %s/effects.json, effects.csv, effects.png\n", args.out.c_str());
  return 0;
}

}  // namespace

Command add_counterfactual_command(CLI::App& app) {
  auto args = std::make_shared<CounterfactualArgs>();
  args->a.label = "A";
  args->b.label = "B";
  CLI::App* cmd = app.add_subcommand(
      "counterfactual",
      "Test a hypothesis: apply a transformation to images and measure how A's and B's "
      "predictions move toward a target class (effects.json/.csv/.png).");
  cmd->add_option("--model-a", args->a.architecture, "A's TorchScript architecture");
  cmd->add_option("--checkpoints-a", args->a.checkpoints, "A's checkpoints")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--model-b", args->b.architecture, "B's TorchScript architecture");
  cmd->add_option("--checkpoints-b", args->b.checkpoints, "B's checkpoints")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--view-a", args->a.view,
                  "A transformation A's data pipeline applies to every image (e.g. the region "
                  "it blanks: 'patch:x=1,y=1,size=3,value=0'), after the tested one");
  cmd->add_option("--view-b", args->b.view, "The same for B");
  cmd->add_option("--label-a", args->a.label, "Name of A")->capture_default_str();
  cmd->add_option("--label-b", args->b.label, "Name of B")->capture_default_str();
  cmd->add_option("--images", args->images, "Images (IDX, .npy uint8, image folder)")->required();
  cmd->add_option("--labels", args->labels, "Labels");
  cmd->add_option("--transform", args->transform,
                  "Transformation, e.g. 'patch:x=1,y=1,w=3,h=3,value=255' (steps joined by ';')")
      ->required();
  cmd->add_option("--target-class", args->target_class, "The class the hypothesis predicts")
      ->required();
  auto* indices = cmd->add_option("--indices", args->indices_file,
                                  "Only the images at these indices (.npy, text, ...)");
  auto* from_direction = cmd->add_option(
      "--direction-of", args->direction_dir,
      "Only the top validation examples of a direction of this result folder (diff/<slug> of "
      "a run, or a `modeldiff diff` output); see --direction and --direction-k");
  from_direction->excludes(indices);
  cmd->add_option("--direction", args->direction,
                  "Which direction: a_minus_b:C or b_minus_a:C, or SET:class=K (the first whose "
                  "top examples are mostly of class K)")
      ->capture_default_str();
  cmd->add_option("--direction-k", args->direction_k,
                  "How many of its top examples (default: all the result keeps, its top-k)")
      ->check(CLI::NonNegativeNumber);
  auto* only = cmd->add_option("--class", args->only_class, "Only images of this class");
  cmd->add_option("--exclude-class", args->exclude_class, "Only images not of this class")
      ->excludes(only);
  cmd->add_option("--max-images", args->max_images, "At most this many images (0 = all)");
  cmd->add_option("--sweep", args->sweep,
                  "Strengths to test, e.g. size=0,1,3,5 (0 = the untransformed control)");
  cmd->add_option("--preprocess", args->preprocessing, "Preprocessing (default: uint8 / 255)");
  cmd->add_option("--device", args->a.device, "cpu or cuda[:N]")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Bootstrap seed")->capture_default_str();
  cmd->add_option("--threads", args->threads, "Threads (0 = all cores)")->capture_default_str();
  cmd->add_option("-o,--out", args->out, "Output folder")->required();
  return [args] {
    args->b.device = args->a.device;
    return run_counterfactual(*args);
  };
}

}  // namespace modeldiff::cli
