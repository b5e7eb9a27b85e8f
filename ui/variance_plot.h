// The paper's variance figure: for every direction, the variance of A's attributions along
// it (x) against B's (y), with the line y = x. Directions far below the line matter for A but
// not for B, and the reverse above it. When the result has significance, a direction's marker
// is filled when it stands above the seed-noise floor and hollow when it does not; hovering a
// marker shows its numbers. (The floor is an explained variance of the residual, not a
// variance of A or B, so it has no place on these axes: the table and tooltips give it.)
#pragma once

#include <qcustomplot.h>

#include <QString>

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
  // Whether direction `component` of `set` is drawn filled (above the floor, or no
  // significance) rather than hollow; false when it is not plotted.
  bool markerFilled(int set, int component) const;
  // The tooltip for widget position `pos`: the numbers of the direction under it, "" if none.
  QString toolTipAt(const QPoint& pos) const;
  // Whether the legend explains the hollow markers.
  bool legendExplainsHollow() const;

 protected:
  bool event(QEvent* event) override;

 Q_SIGNALS:
  void directionClicked(int set, int component);

 private:
  void onPlottableClick(QCPAbstractPlottable* plottable, int dataIndex, QMouseEvent* event);
  // Curves rather than graphs: a curve keeps its points in component order (its key is the
  // component index), while a graph would sort them by variance. Per set, one curve of filled
  // markers (above the floor, or every direction without significance) and one of hollow ones.
  QCPCurve* filled_[2] = {nullptr, nullptr};
  QCPCurve* hollow_[2] = {nullptr, nullptr};
  QCPCurve* hollow_legend_ = nullptr;  // no points: the legend entry explaining hollow markers
  QCPGraph* diagonal_ = nullptr;
  QCPCurve* highlight_ = nullptr;
  const core::DiffSummary* summary_ = nullptr;
};

}  // namespace modeldiff::ui
