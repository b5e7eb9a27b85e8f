// The static HTML report of a comparison of two training algorithms A and B: what a researcher
// opens after `modeldiff run` (report/index.html), offline, in any browser, without JavaScript.
//
// Per comparison (all validation examples, one class, ...): the variance of A's and B's
// attributions along every distinguishing direction of both sets against the y = x line (the
// ModelDiff paper's figure), the histogram of the per-example cosine similarity of A's and B's
// attributions with its median, then for each direction of A minus B and of B minus A its
// explained variance, the variances of A and B along it, and image grids of the training
// examples with the largest and smallest loadings and of the validation examples with the
// largest projections (captions "#index class value").
//
// Files, all in one folder (names are stable, so that a figure can be cited by file name):
//   index.html                                     the page; CSS inline, no network access
//   SLUG_variance.svg, SLUG_cosine.svg             per comparison
//   SLUG_a_minus_b_dirC_top_train.png              per direction C of A minus B (and b_minus_a):
//   SLUG_a_minus_b_dirC_bottom_train.png             grids of training images by loading and
//   SLUG_a_minus_b_dirC_top_val.png                  of validation images by projection
// SLUG is the comparison's title in lower case, letters and digits joined by '-'
// ("class 3 (Dress)" -> "class-3-dress"), made unique by a "-2", "-3" suffix.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/output_directory.h"
#include "core/base/progress.h"
#include "core/data/image_dataset.h"
#include "core/diff/model_diff.h"

namespace modeldiff::core {

struct ReportComparison {
  std::string title;                   // e.g. "all validation examples" or "class 3 (Dress)"
  const DiffResult* result = nullptr;  // not owned; must outlive write_html_report()
};

// A tested hypothesis about one direction (a project's "findings"), shown beside it.
struct ReportFinding {
  std::size_t comparison = 0;                  // index into ReportInput::comparisons
  std::string set = "a_minus_b";               // or "b_minus_a"
  int component = 0;                           // 0-based, as the report numbers directions
  std::string hypothesis, transform, verdict;  // plain text; verdict "" = not decided
  std::string target_class;                    // its name, "" = none
  double effect = 0, ci_low = 0, ci_high = 0;  // A minus B, mean change in P(target); NaN = not
                                               // measured
  // The same experiment repeated by this run on its own models (empty `measured`: not
  // repeated): what was measured, or why nothing was.
  std::string measured;
  std::optional<bool> reproduces;  // empty: nothing recorded to compare with
};

struct ReportInput {
  std::string label_a, label_b;  // the user's names of the algorithms; empty: from the results
  std::string description;       // plain text (escaped here; line breaks kept): how A and B were
                                 // trained, TRAK settings
  // Not owned. The training images (N = each result's num_train) and the validation images
  // (each result's num_targets; target rows index them). Either may be null: the report then
  // lists indices and values instead of showing images.
  const ImageDataset* train = nullptr;
  const ImageDataset* val = nullptr;
  std::vector<ReportComparison> comparisons;
  int images_per_grid = 10;  // 1 to 100; grids have at most 10 columns
  std::vector<std::pair<std::string, std::string>> facts;  // provenance table rows (plain text)
  std::vector<ReportFinding> findings;
};

// Stages the report's files in `out` (flat, see above); the caller commits. `out` is the
// report's own folder, e.g. OutputDirectory(run_dir + "/report"): OutputDirectory stages plain
// file names only, and a re-run then replaces the report file by file.
// Throws InputError before writing anything when the input does not fit together (no
// comparisons, dataset sizes that differ from the results' N or T, images_per_grid out of
// range), and naming the file when one cannot be written. Reports progress per image grid and
// honours cancellation (throws Cancelled).
void write_html_report(OutputDirectory& out, const ReportInput& input,
                       Progress* progress = nullptr);

// The same, into the folder `dir` (created when missing; its parent must exist), committed
// atomically. Returns the path of index.html.
std::string write_html_report(const std::string& dir, const ReportInput& input,
                              Progress* progress = nullptr);

// `text` safe in HTML text and in quoted attribute values (&, <, >, ", ' as entities).
std::string html_escape(std::string_view text);

// The file-name stem for a comparison title: lower-case ASCII letters and digits, runs of
// anything else as one '-', no leading or trailing '-', at most 48 characters; "comparison"
// when nothing is left.
std::string report_slug(std::string_view title);

}  // namespace modeldiff::core
