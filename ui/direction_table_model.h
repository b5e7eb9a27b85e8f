// Table of the distinguishing directions of one comparison: both direction sets (A minus B,
// B minus A), one row per direction, with the residual's explained variance and the variance
// of A and of B along the direction.
#pragma once

#include <QAbstractTableModel>
#include <memory>

#include "core/diff/diff_summary.h"

namespace modeldiff::ui {

class DirectionTableModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column { kSet, kComponent, kExplained, kVarianceA, kVarianceB, kColumnCount };
  enum Role { kSetIndexRole = Qt::UserRole + 1, kComponentRole };

  explicit DirectionTableModel(QObject* parent = nullptr);

  void setSummary(std::shared_ptr<const core::DiffSummary> summary);
  const core::DiffSummary* summary() const { return summary_.get(); }

  // Which direction a row shows: set 0 = A minus B, 1 = B minus A.
  const core::DirectionSummary& directionSet(int set) const;
  int rowOf(int set, int component) const;

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 private:
  std::shared_ptr<const core::DiffSummary> summary_;
};

}  // namespace modeldiff::ui
