// Table of the distinguishing directions of one comparison: both direction sets (A minus B,
// B minus A), one row per direction, with the residual's explained variance and the variance
// of A and of B along the direction, and whether it stands above the seed-noise floor
// (summary.json's significance; "—" with the reason when the result has none).
#pragma once

#include <QAbstractTableModel>
#include <QString>
#include <memory>

#include "core/diff/diff_summary.h"

namespace modeldiff::ui {

class DirectionTableModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column { kSet, kComponent, kSignificance, kExplained, kVarianceA, kVarianceB, kColumnCount };
  // kAboveFloorRole: true / false when significance was computed, invalid otherwise.
  enum Role { kSetIndexRole = Qt::UserRole + 1, kComponentRole, kAboveFloorRole };

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

// The significance numbers of direction `component` of set `set` (0 = A minus B) in words: the
// verdict, half-ensemble explained variance against the floor, their ratio, reproducibility
// mean ± sd, rank stability; or why the result has none. For tooltips (table and plot).
QString significanceToolTip(const core::DiffSummary& summary, int set, int component);

// The set's significance numbers, or null when the result has none.
const core::DirectionSignificanceSummary* significanceOf(const core::DiffSummary& summary, int set);

}  // namespace modeldiff::ui
