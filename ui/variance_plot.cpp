#include "variance_plot.h"

#include <algorithm>

namespace modeldiff::ui {

VariancePlot::VariancePlot(QWidget* parent) : QCustomPlot(parent) {
  const QColor colours[2] = {QColor(0xd6, 0x60, 0x4d), QColor(0x43, 0x93, 0xc3)};
  diagonal_ = addGraph();
  diagonal_->setPen(QPen(Qt::gray, 1, Qt::DashLine));
  diagonal_->setName(QStringLiteral("y = x"));
  diagonal_->setSelectable(QCP::stNone);
  for (int k = 0; k < 2; ++k) {
    sets_[k] = new QCPCurve(xAxis, yAxis);
    sets_[k]->setLineStyle(QCPCurve::lsNone);
    sets_[k]->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, colours[k], 8));
    sets_[k]->setSelectable(QCP::stSingleData);
  }
  highlight_ = new QCPCurve(xAxis, yAxis);
  highlight_->setLineStyle(QCPCurve::lsNone);
  highlight_->setScatterStyle(
      QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(Qt::black, 2), QBrush(), 14));
  highlight_->removeFromLegend();
  highlight_->setSelectable(QCP::stNone);
  // Axes below the points: a click near an axis line selects the point, not the axis.
  for (QCPAxis* axis : {xAxis, yAxis, xAxis2, yAxis2}) axis->setLayer(QStringLiteral("grid"));
  legend->setVisible(true);
  axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignLeft);
  setInteractions(QCP::iRangeDrag | QCP::iRangeZoom | QCP::iSelectPlottables);
  plotLayout()->insertRow(0);
  plotLayout()->addElement(0, 0,
                           new QCPTextElement(this, tr("Variance along each direction"),
                                              QFont(font().family(), 11, QFont::Bold)));
  connect(this, &QCustomPlot::plottableClick, this, &VariancePlot::onPlottableClick);
}

void VariancePlot::setSummary(const core::DiffSummary* summary) {
  summary_ = summary;
  double top = 0;
  for (int k = 0; k < 2; ++k) {
    QVector<double> t, x, y;
    if (summary != nullptr) {
      const core::DirectionSummary& s = k == 0 ? summary->a_minus_b : summary->b_minus_a;
      x = QVector<double>(s.variance_a.begin(), s.variance_a.end());
      y = QVector<double>(s.variance_b.begin(), s.variance_b.end());
      sets_[k]->setName(
          QStringLiteral("%1 − %2 directions")
              .arg(QString::fromStdString(s.first), QString::fromStdString(s.second)));
      for (int i = 0; i < x.size(); ++i) {
        t.push_back(i);
        top = std::max({top, x[i], y[i]});
      }
    }
    sets_[k]->setData(t, x, y, /*alreadySorted=*/true);
  }
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
  return sets_[set]->dataCount();
}

void VariancePlot::onPlottableClick(QCPAbstractPlottable* plottable, int dataIndex, QMouseEvent*) {
  for (int k = 0; k < 2; ++k)
    if (plottable == sets_[k]) Q_EMIT directionClicked(k, dataIndex);
}

}  // namespace modeldiff::ui
