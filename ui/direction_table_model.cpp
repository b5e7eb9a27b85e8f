#include "direction_table_model.h"

#include <QString>

namespace modeldiff::ui {

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
  if (role == Qt::TextAlignmentRole && index.column() >= kComponent)
    return QVariant::fromValue(Qt::AlignRight | Qt::AlignVCenter);
  if (role == Qt::ToolTipRole && index.column() == kSet)
    return tr("Direction %1 of the residual of %2's attributions after removing what %3's "
              "explain")
        .arg(component + 1)
        .arg(QString::fromStdString(s.first), QString::fromStdString(s.second));
  if (role != Qt::DisplayRole) return {};
  switch (index.column()) {
    case kSet:
      return QStringLiteral("%1 − %2").arg(QString::fromStdString(s.first),
                                           QString::fromStdString(s.second));
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
    default:
      return {};
  }
}

}  // namespace modeldiff::ui
