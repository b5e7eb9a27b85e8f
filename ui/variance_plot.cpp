#include "variance_plot.h"

#include <QHelpEvent>
#include <QToolTip>
#include <algorithm>

#include "direction_table_model.h"

namespace modeldiff::ui {

VariancePlot::VariancePlot(QWidget* parent) : QCustomPlot(parent) {
  const QColor colours[2] = {QColor(0xd6, 0x60, 0x4d), QColor(0x43, 0x93, 0xc3)};
  diagonal_ = addGraph();
  diagonal_->setPen(QPen(Qt::gray, 1, Qt::DashLine));
  diagonal_->setName(QStringLiteral("y = x"));
  diagonal_->setSelectable(QCP::stNone);
  for (int k = 0; k < 2; ++k) {
    filled_[k] = new QCPCurve(xAxis, yAxis);
    filled_[k]->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, colours[k], 8));
    hollow_[k] = new QCPCurve(xAxis, yAxis);
    hollow_[k]->setScatterStyle(
        QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(colours[k], 1.5), Qt::white, 8));
    hollow_[k]->removeFromLegend();
    for (QCPCurve* curve : {filled_[k], hollow_[k]}) {
      curve->setLineStyle(QCPCurve::lsNone);
      curve->setSelectable(QCP::stSingleData);
    }
  }
  hollow_legend_ = new QCPCurve(xAxis, yAxis);
  hollow_legend_->setLineStyle(QCPCurve::lsNone);
  hollow_legend_->setScatterStyle(
      QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(Qt::darkGray, 1.5), Qt::white, 8));
  hollow_legend_->setName(tr("hollow: not distinguishable from seed noise"));
  hollow_legend_->setSelectable(QCP::stNone);
  hollow_legend_->removeFromLegend();
  highlight_ = new QCPCurve(xAxis, yAxis);
  highlight_->setLineStyle(QCPCurve::lsNone);
  highlight_->setScatterStyle(
      QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(Qt::black, 2), QBrush(), 14));
  highlight_->removeFromLegend();
  highlight_->setSelectable(QCP::stNone);
  // Axes below the points: a click near an axis line selects the point, not the axis.
  for (QCPAxis* axis : {xAxis, yAxis, xAxis2, yAxis2}) axis->setLayer(QStringLiteral("grid"));
  legend->setVisible(true);
  setInteractions(QCP::iRangeDrag | QCP::iRangeZoom | QCP::iSelectPlottables);
  plotLayout()->insertRow(0);
  plotLayout()->addElement(0, 0,
                           new QCPTextElement(this, tr("Variance along each direction"),
                                              QFont(font().family(), 11, QFont::Bold)));
  // The legend goes below the axes, not inside them: one set's points sit in the top-left
  // corner, the other's in the bottom-right, and a corner legend hid one of them.
  axisRect()->insetLayout()->take(legend);
  plotLayout()->addElement(2, 0, legend);
  legend->setFillOrder(QCPLegend::foColumnsFirst);
  legend->setWrap(2);
  legend->setBorderPen(Qt::NoPen);
  plotLayout()->setRowStretchFactor(2, 0.001);
  connect(this, &QCustomPlot::plottableClick, this, &VariancePlot::onPlottableClick);
}

void VariancePlot::setSummary(const core::DiffSummary* summary) {
  summary_ = summary;
  double top = 0;
  for (int k = 0; k < 2; ++k) {
    filled_[k]->data()->clear();
    hollow_[k]->data()->clear();
    if (summary == nullptr) continue;
    const core::DirectionSummary& s = k == 0 ? summary->a_minus_b : summary->b_minus_a;
    const core::DirectionSignificanceSummary* sig = significanceOf(*summary, k);
    filled_[k]->setName(
        QStringLiteral("%1 − %2 directions")
            .arg(QString::fromStdString(s.first), QString::fromStdString(s.second)));
    for (std::size_t i = 0; i < s.variance_a.size(); ++i) {
      const bool hollow =
          sig != nullptr && i < sig->above_noise_floor.size() && !sig->above_noise_floor[i];
      (hollow ? hollow_[k] : filled_[k])
          ->addData(static_cast<double>(i), s.variance_a[i], s.variance_b[i]);
      top = std::max({top, s.variance_a[i], s.variance_b[i]});
    }
  }
  if (legendExplainsHollow()) hollow_legend_->removeFromLegend();
  if (summary != nullptr && summary->significance.computed) hollow_legend_->addToLegend();
  top = top > 0 ? top * 1.1 : 1.0;
  diagonal_->setData(QVector<double>{0, top}, QVector<double>{0, top});
  const QString a = summary ? QString::fromStdString(summary->label_a) : QStringLiteral("A");
  const QString b = summary ? QString::fromStdString(summary->label_b) : QStringLiteral("B");
  xAxis->setLabel(tr("variance of %1's attributions").arg(a));
  yAxis->setLabel(tr("variance of %1's attributions").arg(b));
  // A little room below 0, so that points of (almost) zero variance do not sit on an axis
  // line, where the axis (drawn above the points) would take their clicks.
  xAxis->setRange(-0.03 * top, top);
  yAxis->setRange(-0.03 * top, top);
  highlight_->data()->clear();
  replot();
}

void VariancePlot::setSelectedDirection(int set, int component) {
  highlight_->data()->clear();
  if (summary_ != nullptr && set >= 0 && set < 2) {
    const core::DirectionSummary& s = set == 0 ? summary_->a_minus_b : summary_->b_minus_a;
    const auto c = static_cast<std::size_t>(component);
    if (c < s.variance_a.size()) highlight_->addData(0, s.variance_a[c], s.variance_b[c]);
  }
  replot();
}

int VariancePlot::pointCount(int set) const {
  return filled_[set]->dataCount() + hollow_[set]->dataCount();
}

namespace {

bool holds(const QCPCurve* curve, int component) {
  for (auto it = curve->data()->constBegin(); it != curve->data()->constEnd(); ++it)
    if (static_cast<int>(it->t) == component) return true;
  return false;
}

}  // namespace

bool VariancePlot::markerFilled(int set, int component) const {
  return holds(filled_[set], component);
}

bool VariancePlot::legendExplainsHollow() const {
  return legend->hasItemWithPlottable(hollow_legend_);
}

QString VariancePlot::toolTipAt(const QPoint& pos) const {
  if (summary_ == nullptr) return {};
  // The nearest marker within a few pixels, as a click would select it.
  const double tolerance = selectionTolerance();
  double best = tolerance;
  int best_set = -1, best_component = -1;
  for (int k = 0; k < 2; ++k)
    for (const QCPCurve* curve : {filled_[k], hollow_[k]})
      for (auto it = curve->data()->constBegin(); it != curve->data()->constEnd(); ++it) {
        const QPointF at(xAxis->coordToPixel(it->key), yAxis->coordToPixel(it->value));
        const double d = QLineF(at, QPointF(pos)).length();
        if (d <= best) {
          best = d;
          best_set = k;
          best_component = static_cast<int>(it->t);
        }
      }
  if (best_set < 0) return {};
  const core::DirectionSummary& s = best_set == 0 ? summary_->a_minus_b : summary_->b_minus_a;
  return tr("%1 − %2, direction %3\n%4")
      .arg(QString::fromStdString(s.first), QString::fromStdString(s.second))
      .arg(best_component + 1)
      .arg(significanceToolTip(*summary_, best_set, best_component));
}

bool VariancePlot::event(QEvent* event) {
  if (event->type() == QEvent::ToolTip) {
    auto* help = static_cast<QHelpEvent*>(event);
    const QString text = toolTipAt(help->pos());
    if (text.isEmpty())
      QToolTip::hideText();
    else
      QToolTip::showText(help->globalPos(), text, this);
    return true;
  }
  return QCustomPlot::event(event);
}

void VariancePlot::onPlottableClick(QCPAbstractPlottable* plottable, int dataIndex, QMouseEvent*) {
  // A curve's key t is the component index (a set's points are split over two curves).
  for (int k = 0; k < 2; ++k)
    for (QCPCurve* curve : {filled_[k], hollow_[k]})
      if (plottable == curve && dataIndex >= 0 && dataIndex < curve->dataCount())
        Q_EMIT directionClicked(k, static_cast<int>(curve->data()->at(dataIndex)->t));
}

}  // namespace modeldiff::ui
