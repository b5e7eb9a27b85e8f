// Two more figures of the direction browser. ProjectionPlot: the analysed validation examples'
// projections on two components of one direction set, coloured by class (classPalette), with
// the selected direction's top validation examples ringed; clicking a point picks that
// example. Its legend lies below the axes, in as many columns as the width fits.
// CosineHistogram: per example, the cosine similarity of A's and B's attribution rows
// (diff.h5's cosine_ab), with the median marked.
#pragma once

#include <qcustomplot.h>

#include <cstdint>
#include <vector>

#include "run_data.h"

namespace modeldiff::ui {

class ProjectionPlot : public QCustomPlot {
  Q_OBJECT

 public:
  explicit ProjectionPlot(QWidget* parent = nullptr);
  // Plots `comparison`'s projections of set `set` on components x and y (0-based); `run`
  // gives the classes (may lack datasets). Null clears.
  void setData(const RunData* run, const Comparison* comparison, int set, int x, int y);
  // Rings these validation indices (the selected direction's top examples).
  void setHighlighted(const std::vector<std::int64_t>& indices);
  // Marks one projections row (-1: none).
  void setSelectedRow(int row);
  int pointCount() const;
  // Where projections row `row` is plotted (plot coordinates); (NaN, NaN) when not plotted.
  QPointF pointOf(int row) const;
  // The classes the legend lists: all plotted ones unless the legend would take more than
  // 40% of the height (then the first ones, and the title says how many).
  int legendClasses() const { return legend_classes_; }

  // Region selection: while on, dragging a rectangle selects the points inside it (instead of
  // panning). The selection (projections rows, ascending) stays across components of the
  // same comparison and is cleared by another comparison.
  void setRegionSelection(bool on);
  void selectRegion(const QRectF& region);  // plot coordinates; an empty region clears
  const std::vector<int>& regionRows() const { return region_rows_; }
  // The directions (0-based x, y) the region was drawn on.
  QPoint regionComponents() const { return region_components_; }

 Q_SIGNALS:
  // A point was clicked: its projections row.
  void rowClicked(int row);
  // The region selection changed.
  void regionChanged(int count);

 protected:
  void resizeEvent(QResizeEvent* event) override;

 private:
  // Lays the legend out for a plot of this size: font, columns, the classes it lists.
  void layoutLegend(int plot_width, int plot_height);
  void onPlottableClick(QCPAbstractPlottable* plottable, int dataIndex, QMouseEvent* event);
  void refreshHighlight();
  void refreshRegion();
  std::vector<QCPCurve*> classes_;
  std::vector<std::vector<int>> rows_;  // rows_[curve][dataIndex] = projections row
  QCPCurve* highlight_ = nullptr;
  QCPCurve* selected_ = nullptr;
  QCPTextElement* title_ = nullptr;
  QString title_text_;  // the title without the legend's note
  int legend_classes_ = 0;
  const Comparison* comparison_ = nullptr;
  int set_ = 0, x_ = 0, y_ = 1;
  std::vector<std::int64_t> highlighted_;
  std::vector<int> highlight_rows_;  // highlight_'s points' projections rows
  int selected_row_ = -1;
  QCPCurve* region_ = nullptr;
  std::vector<int> region_rows_;
  QPoint region_components_;
};

class CosineHistogram : public QCustomPlot {
  Q_OBJECT

 public:
  explicit CosineHistogram(QWidget* parent = nullptr);
  void setValues(const std::vector<float>& cosine, const QString& label_a, const QString& label_b);
  // The bars' heights (examples per bin), left to right.
  std::vector<int> counts() const;
  double median() const { return median_; }

 private:
  QCPBars* bars_ = nullptr;
  QCPItemStraightLine* median_line_ = nullptr;
  QCPItemText* median_text_ = nullptr;
  std::vector<int> counts_;
  double median_ = 0;
};

}  // namespace modeldiff::ui
