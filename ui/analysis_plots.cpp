#include "analysis_plots.h"

#include <QResizeEvent>
#include <algorithm>
#include <cmath>
#include <limits>

#include "class_palette.h"

namespace modeldiff::ui {

namespace {

// The plot's rows: title, axes, legend (below the axes, so that it hides no point).
constexpr int kLegendRow = 2;
// The legend takes at most this share of the plot's height; entries beyond are left out.
constexpr double kLegendShare = 0.4;

QCPTextElement* addTitle(QCustomPlot* plot, const QString& text) {
  plot->plotLayout()->insertRow(0);
  auto* title = new QCPTextElement(plot, text, QFont(plot->font().family(), 11, QFont::Bold));
  plot->plotLayout()->addElement(0, 0, title);
  return title;
}

}  // namespace

ProjectionPlot::ProjectionPlot(QWidget* parent) : QCustomPlot(parent) {
  for (QCPAxis* axis : {xAxis, yAxis, xAxis2, yAxis2}) axis->setLayer(QStringLiteral("grid"));
  legend->setVisible(true);
  legend->setIconSize(8, 8);
  legend->setRowSpacing(0);
  legend->setColumnSpacing(6);
  legend->setBorderPen(Qt::NoPen);
  legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
  setInteractions(QCP::iRangeDrag | QCP::iRangeZoom | QCP::iSelectPlottables);
  title_ = addTitle(this, tr("Projections of the validation examples"));
  // Below the axes, as many columns as fit the width (layoutLegend).
  axisRect()->insetLayout()->take(legend);
  plotLayout()->addElement(kLegendRow, 0, legend);
  plotLayout()->setRowStretchFactor(kLegendRow, 0.001);
  legend->setMargins(QMargins(6, 0, 6, 4));
  connect(this, &QCustomPlot::plottableClick, this, &ProjectionPlot::onPlottableClick);
  connect(
      selectionRect(), &QCPSelectionRect::accepted, this, [this](const QRect& rect, QMouseEvent*) {
        selectRegion(
            QRectF(QPointF(xAxis->pixelToCoord(rect.left()), yAxis->pixelToCoord(rect.top())),
                   QPointF(xAxis->pixelToCoord(rect.right()), yAxis->pixelToCoord(rect.bottom())))
                .normalized());
      });
}

void ProjectionPlot::setRegionSelection(bool on) {
  setSelectionRectMode(on ? QCP::srmCustom : QCP::srmNone);
}

void ProjectionPlot::selectRegion(const QRectF& region) {
  region_rows_.clear();
  region_components_ = QPoint(x_, y_);
  if (comparison_ != nullptr && !region.isEmpty()) {
    const auto n = static_cast<int>(comparison_->target_rows.size());
    for (int row = 0; row < n; ++row) {
      const QPointF p = pointOf(row);
      if (!std::isnan(p.x()) && region.contains(p)) region_rows_.push_back(row);
    }
  }
  refreshRegion();
  replot();
  Q_EMIT regionChanged(static_cast<int>(region_rows_.size()));
}

void ProjectionPlot::refreshRegion() {
  if (region_ == nullptr) return;
  region_->data()->clear();
  double t = 0;
  for (int row : region_rows_) {
    const QPointF p = pointOf(row);
    if (!std::isnan(p.x())) region_->addData(t++, p.x(), p.y());
  }
}

void ProjectionPlot::setData(const RunData* run, const Comparison* comparison, int set, int x,
                             int y) {
  clearPlottables();
  const bool same_rows = comparison == comparison_ && comparison != nullptr;
  classes_.clear();
  rows_.clear();
  comparison_ = comparison;
  set_ = set;
  x_ = x;
  y_ = y;
  const std::int64_t columns =
      comparison != nullptr && set >= 0 && set < 2 ? comparison->projection_columns[set] : 0;
  const bool valid = columns > 0 && x >= 0 && y >= 0 && x < columns && y < columns;
  std::vector<std::int64_t> labels;  // per projections row; 0 when the classes are unknown
  std::int64_t class_count = 1;
  std::vector<QColor> palette;
  if (valid) {
    const auto n = static_cast<std::int64_t>(comparison->target_rows.size());
    labels.assign(static_cast<std::size_t>(n), 0);
    if (run != nullptr && run->val) {
      for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t index = comparison->target_rows[static_cast<std::size_t>(i)];
        if (index >= 0 && index < run->val->size())
          labels[static_cast<std::size_t>(i)] = run->val->labels[static_cast<std::size_t>(index)];
      }
      for (std::int64_t label : labels) class_count = std::max(class_count, label + 1);
      class_count = std::max(class_count, static_cast<std::int64_t>(run->val->class_names.size()));
    }
    palette = classPalette(static_cast<int>(class_count));
    rows_.assign(static_cast<std::size_t>(class_count), {});
    for (std::int64_t i = 0; i < n; ++i)
      rows_[static_cast<std::size_t>(labels[static_cast<std::size_t>(i)])].push_back(
          static_cast<int>(i));
    const float* p = comparison->projections[set].data();
    for (std::size_t k = 0; k < rows_.size(); ++k) {
      if (rows_[k].empty()) continue;
      auto* curve = new QCPCurve(xAxis, yAxis);
      curve->setLineStyle(QCPCurve::lsNone);
      curve->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, palette[k], 6));
      curve->setSelectable(QCP::stSingleData);
      QString name =
          run != nullptr && run->val
              ? QString::fromStdString(run->val->class_name(static_cast<std::int64_t>(k)))
              : tr("validation examples");
      curve->setName(name);
      QVector<double> t, px, py;
      for (std::size_t i = 0; i < rows_[k].size(); ++i) {
        const std::int64_t row = rows_[k][i];
        t.push_back(static_cast<double>(i));
        px.push_back(p[row * columns + x]);
        py.push_back(p[row * columns + y]);
      }
      curve->setData(t, px, py, /*alreadySorted=*/true);
      classes_.push_back(curve);
    }
    // Drop the empty classes' row lists so that rows_ aligns with classes_.
    rows_.erase(std::remove_if(rows_.begin(), rows_.end(),
                               [](const std::vector<int>& r) { return r.empty(); }),
                rows_.end());
  }
  highlight_ = new QCPCurve(xAxis, yAxis);
  highlight_->setLineStyle(QCPCurve::lsNone);
  highlight_->setScatterStyle(
      QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(Qt::black, 1.5), QBrush(), 11));
  highlight_->setName(tr("top examples of the direction"));
  highlight_->setSelectable(QCP::stNone);
  selected_ = new QCPCurve(xAxis, yAxis);
  selected_->setLineStyle(QCPCurve::lsNone);
  selected_->setScatterStyle(
      QCPScatterStyle(QCPScatterStyle::ssCross, QPen(Qt::red, 2.5), QBrush(), 14));
  selected_->removeFromLegend();
  selected_->setSelectable(QCP::stNone);
  region_ = new QCPCurve(xAxis, yAxis);
  region_->setLineStyle(QCPCurve::lsNone);
  region_->setScatterStyle(
      QCPScatterStyle(QCPScatterStyle::ssSquare, QPen(QColor(0x20, 0x20, 0x20), 1), QBrush(), 8));
  region_->removeFromLegend();
  region_->setSelectable(QCP::stNone);
  if (!same_rows && !region_rows_.empty()) {
    region_rows_.clear();
    Q_EMIT regionChanged(0);
  }
  refreshRegion();
  const QString set_name =
      valid ? QString::fromStdString(set == 0 ? comparison->summary->a_minus_b.first + " minus " +
                                                    comparison->summary->a_minus_b.second
                                              : comparison->summary->b_minus_a.first + " minus " +
                                                    comparison->summary->b_minus_a.second)
            : QString();
  xAxis->setLabel(valid ? tr("projection on direction %1").arg(x + 1) : QString());
  yAxis->setLabel(valid ? tr("projection on direction %1").arg(y + 1) : QString());
  title_text_ = valid ? tr("Projections on %1 directions").arg(set_name)
                      : tr("Projections of the validation examples (not available)");
  layoutLegend(width(), height());
  refreshHighlight();
  rescaleAxes();
  for (QCPAxis* axis : {xAxis, yAxis}) axis->scaleRange(1.08, axis->range().center());
  replot();
}

void ProjectionPlot::resizeEvent(QResizeEvent* event) {
  layoutLegend(event->size().width(), event->size().height());
  QCustomPlot::resizeEvent(event);
}

void ProjectionPlot::layoutLegend(int plot_width, int plot_height) {
  legend->clearItems();
  const int classes = static_cast<int>(classes_.size());
  const int entries = classes + (highlight_ != nullptr ? 1 : 0);
  // Smaller type for many classes (CIFAR-100's 100 names still fit a window-wide plot).
  legend->setFont(QFont(font().family(), entries > 24 ? 6 : 7));
  // The widest class sets the column width (the rings' longer entry widens one column): as
  // many columns as fit, then as many rows as the legend's share of the height holds.
  int widest = 1, tallest = 1, rings = 0;
  for (int k = 0; k < entries; ++k) {
    QCPAbstractPlottable* p =
        k < classes ? static_cast<QCPAbstractPlottable*>(classes_[static_cast<std::size_t>(k)])
                    : highlight_;
    const QCPPlottableLegendItem entry(legend, p);
    const QSize hint = static_cast<const QCPLayoutElement&>(entry).minimumOuterSizeHint();
    if (k < classes)
      widest = std::max(widest, hint.width());
    else
      rings = hint.width();
    tallest = std::max(tallest, hint.height());
  }
  const QMargins m = legend->margins();
  const int spacing_x = legend->columnSpacing(), spacing_y = legend->rowSpacing();
  const int room = plot_width - m.left() - m.right() - std::max(widest, rings);
  const int columns =
      std::clamp(1 + std::max(room, 0) / (widest + spacing_x), 1, std::max(entries, 1));
  const int rows_fit =
      std::max(1, static_cast<int>((kLegendShare * plot_height - m.top() - m.bottom() + spacing_y) /
                                   (tallest + spacing_y)));
  // Classes listed: all that fit, keeping a place for the rings' entry.
  const int listed = std::min(classes, columns * rows_fit - (highlight_ != nullptr ? 1 : 0));
  legend->setWrap(columns);
  for (int k = 0; k < classes; ++k)
    if (k < listed) classes_[static_cast<std::size_t>(k)]->addToLegend(legend);
  if (highlight_ != nullptr) highlight_->addToLegend(legend);
  legend->setFillOrder(QCPLayoutGrid::foColumnsFirst, true);
  legend_classes_ = std::max(listed, 0);
  title_->setText(
      legend_classes_ < classes
          ? tr("%1 (legend: %2 of %3 classes)").arg(title_text_).arg(legend_classes_).arg(classes)
          : title_text_);
}

void ProjectionPlot::setHighlighted(const std::vector<std::int64_t>& indices) {
  highlighted_ = indices;
  refreshHighlight();
  replot();
}

void ProjectionPlot::refreshHighlight() {
  if (highlight_ == nullptr) return;
  highlight_->data()->clear();
  highlight_rows_.clear();
  if (comparison_ == nullptr) return;
  double t = 0;
  for (std::int64_t index : highlighted_) {
    const auto it =
        std::find(comparison_->target_rows.begin(), comparison_->target_rows.end(), index);
    if (it == comparison_->target_rows.end()) continue;
    const QPointF point = pointOf(static_cast<int>(it - comparison_->target_rows.begin()));
    if (std::isnan(point.x())) continue;
    highlight_->addData(t++, point.x(), point.y());
    highlight_rows_.push_back(static_cast<int>(it - comparison_->target_rows.begin()));
  }
}

void ProjectionPlot::setSelectedRow(int row) {
  if (selected_ == nullptr) return;
  selected_->data()->clear();
  selected_row_ = row;
  const QPointF point = pointOf(row);
  if (!std::isnan(point.x())) selected_->addData(0, point.x(), point.y());
  replot();
}

int ProjectionPlot::pointCount() const {
  int n = 0;
  for (const QCPCurve* c : classes_) n += c->dataCount();
  return n;
}

QPointF ProjectionPlot::pointOf(int row) const {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (comparison_ == nullptr || row < 0) return {nan, nan};
  const std::int64_t columns = comparison_->projection_columns[set_];
  if (columns <= x_ || columns <= y_ ||
      static_cast<std::size_t>(row) >= comparison_->target_rows.size())
    return {nan, nan};
  const float* p = comparison_->projections[set_].data();
  return {p[row * columns + x_], p[row * columns + y_]};
}

void ProjectionPlot::onPlottableClick(QCPAbstractPlottable* plottable, int dataIndex,
                                      QMouseEvent*) {
  // The rings and the cross lie above the points and take their clicks: the point beneath.
  if (plottable == highlight_ && dataIndex >= 0 &&
      static_cast<std::size_t>(dataIndex) < highlight_rows_.size()) {
    Q_EMIT rowClicked(highlight_rows_[static_cast<std::size_t>(dataIndex)]);
    return;
  }
  if (plottable == selected_ && selected_row_ >= 0) {
    Q_EMIT rowClicked(selected_row_);
    return;
  }
  for (std::size_t k = 0; k < classes_.size(); ++k)
    if (plottable == classes_[k] && dataIndex >= 0 &&
        static_cast<std::size_t>(dataIndex) < rows_[k].size())
      Q_EMIT rowClicked(rows_[k][static_cast<std::size_t>(dataIndex)]);
}

CosineHistogram::CosineHistogram(QWidget* parent) : QCustomPlot(parent) {
  bars_ = new QCPBars(xAxis, yAxis);
  bars_->setPen(QPen(QColor(0x43, 0x93, 0xc3).darker(130)));
  bars_->setBrush(QColor(0x43, 0x93, 0xc3, 180));
  bars_->setWidthType(QCPBars::wtPlotCoords);
  median_line_ = new QCPItemStraightLine(this);
  median_line_->setPen(QPen(QColor(0xd6, 0x60, 0x4d), 2, Qt::DashLine));
  median_text_ = new QCPItemText(this);
  median_text_->setPositionAlignment(Qt::AlignTop | Qt::AlignLeft);
  median_text_->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
  median_text_->setColor(QColor(0xd6, 0x60, 0x4d));
  xAxis->setLabel(tr("cosine similarity of the two algorithms' attributions"));
  yAxis->setLabel(tr("validation examples"));
  addTitle(this, tr("How much A's and B's attributions agree, per example"));
  setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
}

void CosineHistogram::setValues(const std::vector<float>& cosine, const QString& label_a,
                                const QString& label_b) {
  constexpr int kBins = 40;
  constexpr double kLow = -1, kWidth = 2.0 / kBins;
  counts_.assign(kBins, 0);
  std::vector<float> finite;
  for (float v : cosine) {
    if (!std::isfinite(v)) continue;
    finite.push_back(v);
    const int bin = std::clamp(static_cast<int>((v - kLow) / kWidth), 0, kBins - 1);
    ++counts_[static_cast<std::size_t>(bin)];
  }
  QVector<double> keys, heights;
  int top = 1;
  for (int b = 0; b < kBins; ++b) {
    keys.push_back(kLow + (b + 0.5) * kWidth);
    heights.push_back(counts_[static_cast<std::size_t>(b)]);
    top = std::max(top, counts_[static_cast<std::size_t>(b)]);
  }
  bars_->setWidth(kWidth);
  bars_->setData(keys, heights, /*alreadySorted=*/true);
  median_ = 0;
  if (!finite.empty()) {
    std::sort(finite.begin(), finite.end());
    const std::size_t n = finite.size();
    median_ = n % 2 == 1 ? finite[n / 2] : 0.5 * (double(finite[n / 2 - 1]) + finite[n / 2]);
  }
  median_line_->setVisible(!finite.empty());
  median_text_->setVisible(!finite.empty());
  median_line_->point1->setCoords(median_, 0);
  median_line_->point2->setCoords(median_, 1);
  median_text_->position->setCoords(median_ + 0.02, 0.05);
  median_text_->setText(tr("median %1").arg(median_, 0, 'f', 3));
  xAxis->setLabel(tr("cosine similarity of %1's and %2's attributions").arg(label_a, label_b));
  xAxis->setRange(-1.02, 1.02);
  yAxis->setRange(0, top * 1.1);
  replot();
}

std::vector<int> CosineHistogram::counts() const {
  return counts_;
}

}  // namespace modeldiff::ui
