// The paper's variance figure: for every direction, the variance of A's attributions along
// it (x) against B's (y), with the line y = x. Directions far below the line matter for A but
// not for B, and the reverse above it.
#pragma once

#include <qcustomplot.h>

#include "core/diff/diff_summary.h"

namespace modeldiff::ui {

class VariancePlot : public QCustomPlot {
  Q_OBJECT

 public:
  explicit VariancePlot(QWidget* parent = nullptr);
  void setSummary(const core::DiffSummary* summary);
  // Highlights one direction (set 0 = A minus B, 1 = B minus A); -1 clears.
  void setSelectedDirection(int set, int component);
  // Points plotted for a set (for tests and export).
  int pointCount(int set) const;

 Q_SIGNALS:
  void directionClicked(int set, int component);

 private:
  void onPlottableClick(QCPAbstractPlottable* plottable, int dataIndex, QMouseEvent* event);
  // Curves rather than graphs: a curve keeps its points in component order (its key is the
  // component index), while a graph would sort them by variance.
  QCPCurve* sets_[2] = {nullptr, nullptr};
  QCPGraph* diagonal_ = nullptr;
  QCPCurve* highlight_ = nullptr;
  const core::DiffSummary* summary_ = nullptr;
};

}  // namespace modeldiff::ui
