#include "direction_table_model.h"

#include <QColor>
#include <QString>
#include <cmath>

#include "core/diff/significance.h"

namespace modeldiff::ui {

const core::DirectionSignificanceSummary* significanceOf(const core::DiffSummary& summary,
                                                         int set) {
  if (!summary.significance.computed) return nullptr;
  return set == 0 ? &summary.significance.a_minus_b : &summary.significance.b_minus_a;
}

QString significanceToolTip(const core::DiffSummary& summary, int set, int component) {
  const core::DirectionSignificanceSummary* s = significanceOf(summary, set);
  const auto c = static_cast<std::size_t>(component);
  if (s == nullptr || c >= s->above_noise_floor.size())
    return DirectionTableModel::tr("No significance: %1")
        .arg(QString::fromStdString(summary.significance.reason));
  // A zero floor makes the ratio infinite (read back as HUGE_VAL).
  const QString ratio = std::isfinite(s->floor_ratio[c])
                            ? QString::number(s->floor_ratio[c], 'g', 3)
                            : QStringLiteral("∞");
  return DirectionTableModel::tr(
             "%1\nhalf-ensemble explained variance %2 vs noise floor %3 (ratio %4)\n"
             "reproducibility (best |cos| across splits) %5 ± %6\n"
             "rank stable in %7% of matches; %8 split(s)")
      .arg(QString::fromUtf8(core::significance_verdict(s->above_noise_floor[c])))
      .arg(s->half_explained_variance[c], 0, 'g', 4)
      .arg(s->noise_floor[c], 0, 'g', 4)
      .arg(ratio)
      .arg(s->reproducibility[c], 0, 'f', 3)
      .arg(s->reproducibility_std[c], 0, 'f', 3)
      .arg(100.0 * s->rank_stable[c], 0, 'f', 0)
      .arg(summary.significance.splits);
}

DirectionTableModel::DirectionTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void DirectionTableModel::setSummary(std::shared_ptr<const core::DiffSummary> summary) {
  beginResetModel();
  summary_ = std::move(summary);
  endResetModel();
}

const core::DirectionSummary& DirectionTableModel::directionSet(int set) const {
  return set == 0 ? summary_->a_minus_b : summary_->b_minus_a;
}

int DirectionTableModel::rowOf(int set, int component) const {
  return set * static_cast<int>(summary_->a_minus_b.explained_variance.size()) + component;
}

int DirectionTableModel::rowCount(const QModelIndex& parent) const {
  if (parent.isValid() || !summary_) return 0;
  return static_cast<int>(summary_->a_minus_b.explained_variance.size() +
                          summary_->b_minus_a.explained_variance.size());
}

int DirectionTableModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : kColumnCount;
}

QVariant DirectionTableModel::data(const QModelIndex& index, int role) const {
  if (!summary_ || !index.isValid()) return {};
  const int per_set = static_cast<int>(summary_->a_minus_b.explained_variance.size());
  const int set = index.row() < per_set ? 0 : 1;
  const int component = set == 0 ? index.row() : index.row() - per_set;
  const core::DirectionSummary& s = directionSet(set);
  const auto c = static_cast<std::size_t>(component);
  if (role == kSetIndexRole) return set;
  if (role == kComponentRole) return component;
  const core::DirectionSignificanceSummary* sig = significanceOf(*summary_, set);
  const bool has_sig = sig != nullptr && c < sig->above_noise_floor.size();
  if (role == kAboveFloorRole)
    return has_sig ? QVariant(bool(sig->above_noise_floor[c])) : QVariant();
  if (index.column() == kSignificance) {
    if (role == Qt::ToolTipRole) return significanceToolTip(*summary_, set, component);
    // Seed noise greyed, so that the directions worth reading stand out.
    if (role == Qt::ForegroundRole && has_sig && !sig->above_noise_floor[c])
      return QColor(Qt::gray);
    if (role == Qt::DisplayRole)
      return !has_sig                    ? QStringLiteral("—")
             : sig->above_noise_floor[c] ? tr("above floor")
                                         : tr("seed noise");
    return {};
  }
  if (role == Qt::TextAlignmentRole && index.column() >= kComponent &&
      index.column() != kSignificance)
    return QVariant::fromValue(Qt::AlignRight | Qt::AlignVCenter);
  if (role == Qt::ToolTipRole && index.column() == kSet)
    return tr("%1 − %2, direction %3: the residual of %1's attributions after removing what "
              "%2's explain")
        .arg(QString::fromStdString(s.first), QString::fromStdString(s.second))
        .arg(component + 1);
  if (role != Qt::DisplayRole) return {};
  switch (index.column()) {
    case kSet:
      // The letters, which the window's header names: the full labels would push the verdict
      // out of a narrow table (they are in the tooltip).
      return set == 0 ? QStringLiteral("A − B") : QStringLiteral("B − A");
    case kComponent:
      return component + 1;  // people count directions from 1, as the report does
    case kExplained:
      return QStringLiteral("%1 (%2%)")
          .arg(s.explained_variance[c], 0, 'g', 4)
          .arg(100.0 * s.explained_variance_ratio[c], 0, 'f', 1);
    case kVarianceA:
      return QString::number(s.variance_a[c], 'g', 4);
    case kVarianceB:
      return QString::number(s.variance_b[c], 'g', 4);
    default:
      return {};
  }
}

QVariant DirectionTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  const QString a = summary_ ? QString::fromStdString(summary_->label_a) : QStringLiteral("A");
  const QString b = summary_ ? QString::fromStdString(summary_->label_b) : QStringLiteral("B");
  switch (section) {
    case kSet:
      return tr("Residual");
    case kComponent:
      return tr("#");
    case kExplained:
      return tr("Explained variance");
    case kVarianceA:
      return tr("Var %1").arg(a);
    case kVarianceB:
      return tr("Var %1").arg(b);
    case kSignificance:
      return tr("Significance");
    default:
      return {};
  }
}

}  // namespace modeldiff::ui
