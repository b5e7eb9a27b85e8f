// `modeldiff run PROJECT` and `modeldiff demo`: the main job, from data and models to
// distinguishing directions, per-class comparisons and an HTML report.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "commands.h"
#include "console_progress.h"
#include "core/base/error.h"
#include "core/base/percent.h"
#include "core/pipeline/demo_paths.h"
#include "core/pipeline/project.h"
#include "core/pipeline/run_project.h"
#include "core/pipeline/validate.h"

namespace modeldiff::cli {
namespace {

std::string percent(double v) {
  return core::format_percent(v);
}

int run(const core::Project& project) {
  ConsoleProgress progress;
  const auto log = [&](const std::string& line) { progress.print_line(line); };
  const core::RunOutcome r = core::run_project(project, progress, log);
  progress.finish();
  std::printf("\n%s\n", project.name.c_str());
  std::printf("%-34s %16s %16s\n", "", ("A: " + r.a.label).c_str(), ("B: " + r.b.label).c_str());
  // Not measured (NaN, printed "n/a") for an algorithm given by precomputed scores.
  double acc[2] = {0, 0};
  const core::AlgorithmOutcome* o[2] = {&r.a, &r.b};
  for (int i = 0; i < 2; ++i) {
    for (double a : o[i]->val_accuracy) acc[i] += a;
    acc[i] = o[i]->val_accuracy.empty() ? std::nan("")
                                        : acc[i] / static_cast<double>(o[i]->val_accuracy.size());
  }
  std::printf("%-34s %16zu %16zu\n", "checkpoints", r.a.checkpoints.size(), r.b.checkpoints.size());
  std::printf("%-34s %16s %16s\n", "mean validation accuracy", percent(acc[0]).c_str(),
              percent(acc[1]).c_str());
  const std::string same_label =
      "TRAK top-" + std::to_string(core::kSameLabelTopK) + " same-label rate";
  std::printf("%-34s %16s %16s   (random ranking ~10%%)\n", same_label.c_str(),
              percent(r.a.same_label_rate).c_str(), percent(r.b.same_label_rate).c_str());
  if (r.planted.enabled) {
    const core::PlantedCheck& pc = r.planted;
    std::printf("\nplanted patch (%lld training images, chance %s):\n",
                static_cast<long long>(pc.patched_train), percent(pc.base_rate).c_str());
    std::printf("  patched among the top-k training images of %s, per direction:",
                pc.direction_set.c_str());
    for (double p : pc.precision) std::printf(" %s", percent(p).c_str());
    std::printf("\n");
    if (!pc.class_precision.empty()) {
      std::printf("  the same within the patched class:");
      for (double p : pc.class_precision) std::printf(" %s", percent(p).c_str());
      std::printf("\n");
    }
    std::printf(
        "  stamping the patch moves other-class predictions to the patched class: %s when "
        "the algorithm sees it, %s when it is hidden\n",
        percent(pc.shift_seeing).c_str(), percent(pc.shift_hidden).c_str());
  }
  std::printf("\n%zu comparisons in %s/diff, scores in %s/scores\n", r.comparisons.size(),
              r.output.c_str(), r.output.c_str());
  std::printf("report: %s\nrecord: %s\nfinished in %.0f s\n", r.report_index.c_str(),
              r.run_json.c_str(), r.seconds);
  return 0;
}

}  // namespace

Command add_run_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto threads = std::make_shared<int>(-1);
  CLI::App* cmd = app.add_subcommand(
      "run",
      "The main job: train-or-load two algorithms, TRAK both, ModelDiff both ways over all "
      "validation examples and per class, HTML report. PROJECT is a JSON file (see the "
      "README's 'Project files').");
  cmd->add_option("PROJECT", *path, "Project file (JSON)")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--out", *output, "Output folder (default: the project's \"output\")");
  cmd->add_option("--threads", *threads, "Threads (0 = all cores; default: the project's)");
  return [path, output, threads] {
    core::Project p = core::load_project(*path);
    if (!output->empty()) p.output = *output;
    if (*threads >= 0) p.threads = *threads;
    return run(p);
  };
}

Command add_demo_command(CLI::App& app) {
  auto output = std::make_shared<std::string>();
  auto study = std::make_shared<std::string>();
  auto fashion = std::make_shared<std::string>(core::default_fashion_mnist_dir());
  auto threads = std::make_shared<int>(0);
  auto quick = std::make_shared<bool>(false);
  auto print = std::make_shared<bool>(false);
  auto model = std::make_shared<std::string>();
  auto models = std::make_shared<int>(0);
  CLI::App* cmd = app.add_subcommand(
      "demo",
      "The built-in Fashion-MNIST project end to end: algorithm A trains on data where 30% of "
      "the shirts carry a small white patch, B sees the patch region blanked; ModelDiff should "
      "find the patched shirts. About 5 minutes on 2 cores. With STUDY, one of the ModelDiff "
      "paper's case studies rebuilt with ResNet-9 on Fashion-MNIST (at most ~15 minutes each).");
  std::vector<std::string> studies = core::study_names();
  std::string names;
  for (const auto& s : studies) names += (names.empty() ? "" : ", ") + s;
  cmd->add_option("STUDY", *study,
                  "A built-in study: " + names +
                      " (augmentation: crop + flip vs none; pretraining: pre-trained on other "
                      "Fashion-MNIST images and fine-tuned vs from scratch; sgd: large lr and "
                      "small batches vs small lr and large batches). Default: the planted demo")
      ->check(CLI::IsMember(studies));
  cmd->add_option(
      "-o,--out", *output,
      "Output folder (default: " + core::default_demo_output_dir() + ", or beside it demo-STUDY)");
  cmd->add_option("--fashion-mnist", *fashion, "Folder with the Fashion-MNIST IDX files")
      ->capture_default_str();
  cmd->add_option("--threads", *threads, "Threads (0 = all cores)")->capture_default_str();
  cmd->add_flag("--quick", *quick, "A smoke-test size (seconds): 1,000 training images, 2 models");
  cmd->add_option("--model", *model,
                  "Architecture of both algorithms: a TorchScript file or resnet9[:width=W] "
                  "(the ModelDiff paper's ResNet-9; default: the demo's small CNN, for a "
                  "study resnet9:width=16)");
  cmd->add_option("--models", *models,
                  "Models per algorithm (default: the demo's 8, a study's 6). More give more "
                  "stable directions, at the cost of training time; a rerun trains only the "
                  "models it does not have yet")
      ->check(CLI::Range(1, 1000));
  cmd->add_flag("--print-project", *print,
                "Print the demo as a project file (a template for your own) and exit");
  return [=] {
    const std::string out = output->empty() ? core::default_demo_output_dir(*study) : *output;
    core::Project p =
        study->empty()
            ? core::demo_project(model->empty() ? core::demo_architecture_path() : *model, *fashion,
                                 out, *quick)
            : core::study_project(*study, model->empty() ? core::kStudyArchitecture : *model,
                                  *fashion, out, *quick);
    p.threads = *threads;
    if (*models > 0)
      for (core::AlgorithmSpec* a : {&p.a, &p.b})
        if (a->trains()) a->models = *models;
    if (*print) {
      std::printf("%s\n", core::project_json(p).c_str());
      return 0;
    }
    return run(p);
  };
}

Command add_validate_command(CLI::App& app) {
  auto output = std::make_shared<std::string>();
  auto fashion = std::make_shared<std::string>(core::default_fashion_mnist_dir());
  auto threads = std::make_shared<int>(0);
  auto quick = std::make_shared<bool>(false);
  auto only = std::make_shared<std::vector<std::string>>();
  auto list = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "validate",
      "The method's known-answer benchmark: planted features in Fashion-MNIST (a patch, a "
      "texture, a brightness change, a feature B's preprocessing removes, a feature A learns "
      "only with augmentation; CNN and ResNet-9) and two null comparisons (one algorithm "
      "against itself). Trains, attributes and compares each case, and reports how much of the "
      "top of the first A-minus-B directions is planted, for the default and three method "
      "variants. About an hour on 2 cores; --quick is a smoke test.");
  cmd->add_option("-o,--out", *output,
                  "Output folder (default: " + core::default_demo_output_dir("validate") + ")");
  cmd->add_option("--fashion-mnist", *fashion, "Folder with the Fashion-MNIST IDX files")
      ->capture_default_str();
  cmd->add_option("--threads", *threads, "Threads (0 = all cores)")->capture_default_str();
  cmd->add_flag("--quick", *quick, "A smoke-test size: 600 training images, 4 models, 1 epoch");
  cmd->add_option("--case", *only, "Run only these cases (repeatable; see --list)");
  cmd->add_flag("--list", *list, "List the cases and exit");
  return [=] {
    const std::string out = output->empty() ? core::default_demo_output_dir("validate") : *output;
    std::vector<core::ValidationCase> cases = core::validation_cases(
        core::demo_architecture_path(), core::kStudyArchitecture, *fashion, out, *quick);
    if (*list) {
      for (const auto& c : cases)
        std::printf("%-22s %-9s %s; %s%s\n", c.name.c_str(), c.model.c_str(), c.feature.c_str(),
                    c.difference.c_str(), c.null ? " (null)" : "");
      return 0;
    }
    if (!only->empty()) {
      std::vector<core::ValidationCase> chosen;
      for (const std::string& name : *only) {
        const auto it = std::find_if(cases.begin(), cases.end(),
                                     [&](const core::ValidationCase& c) { return c.name == name; });
        if (it == cases.end()) {
          std::string names;
          for (const auto& c : cases) names += (names.empty() ? "" : ", ") + c.name;
          throw core::InputError("", "unknown validation case").expected(names).found(name);
        }
        chosen.push_back(*it);
      }
      cases = chosen;
    }
    for (auto& c : cases) c.project.threads = *threads;
    ConsoleProgress progress;
    const auto log = [&](const std::string& line) { progress.print_line(line); };
    const core::ValidationOutcome v = core::run_validation(cases, out, progress, log);
    progress.finish();
    std::printf("\n%s\ntable: %s\nrecord: %s\n", v.markdown.c_str(), v.markdown_path.c_str(),
                v.json_path.c_str());
    return 0;
  };
}

}  // namespace modeldiff::cli
