#include "grid_figure.h"

#include <QFileInfo>
#include <QFontMetrics>
#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QSvgGenerator>
#include <algorithm>
#include <cmath>

#include "image_grid_model.h"

namespace modeldiff::ui {

namespace {

constexpr int kMargin = 12, kGap = 8;

// Pixel-sized fonts (a point is 4/3 px at 96 dpi): the layout is in the figure's own units,
// the same on every device (screen, image, SVG, PDF at 72 dpi).
QFont captionFont(const GridFigureStyle& style) {
  QFont f;
  f.setPixelSize(std::max(6, qRound(style.font_size * 4.0 / 3.0)));
  return f;
}

QFont titleFont(const GridFigureStyle& style) {
  QFont f;
  f.setPixelSize(std::max(8, qRound(style.font_size * 1.3 * 4.0 / 3.0)));
  f.setBold(true);
  return f;
}

int columnsOf(const ImageGridModel& model, const GridFigureStyle& style) {
  return std::max(1, std::min(style.columns, model.rowCount()));
}

// Caption lines of one item: "#index class" and "value name: value".
QStringList captionOf(const ImageGridModel& model, int row) {
  const QModelIndex index = model.index(row);
  QStringList lines{model.data(index, Qt::DisplayRole).toString()};
  const QVariant value = model.data(index, ImageGridModel::kValueRole);
  if (value.isValid())
    lines << QStringLiteral("%1 %2").arg(model.valueName()).arg(value.toDouble(), 0, 'g', 3);
  return lines;
}

}  // namespace

QSize gridFigureSize(const ImageGridModel& model, const QString& title,
                     const GridFigureStyle& style) {
  const int columns = columnsOf(model, style);
  const int rows = std::max(1, (model.rowCount() + columns - 1) / columns);
  const QFontMetrics caption(captionFont(style)), heading(titleFont(style));
  const int cell_w = style.cell + kGap;
  const int cell_h = style.cell + 2 * caption.lineSpacing() + kGap;
  const int width = std::max(2 * kMargin + columns * cell_w - kGap,
                             2 * kMargin + heading.horizontalAdvance(title));
  const int title_h = title.isEmpty() ? 0 : heading.lineSpacing() + kGap;
  return {width, 2 * kMargin + title_h + rows * cell_h - kGap};
}

void paintGridFigure(QPainter& painter, const ImageGridModel& model, const QString& title,
                     const GridFigureStyle& style) {
  const QSize size = gridFigureSize(model, title, style);
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing);
  painter.fillRect(QRect(QPoint(0, 0), size), Qt::white);
  painter.setPen(Qt::black);
  int y = kMargin;
  if (!title.isEmpty()) {
    painter.setFont(titleFont(style));
    const QFontMetrics heading(titleFont(style));
    painter.drawText(QRect(kMargin, y, size.width() - 2 * kMargin, heading.lineSpacing()),
                     Qt::AlignLeft | Qt::AlignVCenter, title);
    y += heading.lineSpacing() + kGap;
  }
  painter.setFont(captionFont(style));
  const QFontMetrics caption(captionFont(style));
  const int columns = columnsOf(model, style);
  const int cell_w = style.cell + kGap;
  const int cell_h = style.cell + 2 * caption.lineSpacing() + kGap;
  const ThumbnailCache* cache = model.cache();
  for (int row = 0; row < model.rowCount(); ++row) {
    const int x0 = kMargin + (row % columns) * cell_w;
    const int y0 = y + (row / columns) * cell_h;
    const QRect image_rect(x0, y0, style.cell, style.cell);
    const auto index = model.data(model.index(row), ImageGridModel::kIndexRole).toLongLong();
    const bool patched = model.data(model.index(row), ImageGridModel::kPatchedRole).toBool();
    if (cache != nullptr && index >= 0 && index < cache->dataset().size()) {
      // Rendered at the output's pixel size (at least 2 pixels per unit), not the screen's
      // thumbnail, so PNGs at 2x and zoomed PDFs stay sharp.
      const double density = std::max(2.0, painter.worldTransform().m11());
      const int pixels = static_cast<int>(std::ceil(style.cell * density));
      QImage image;
      try {
        image = ThumbnailCache::render(cache->dataset(), index, std::max(pixels, 8), patched);
      } catch (...) {
        // An image that cannot be shown: the grid's placeholder (its tooltip says why).
      }
      if (image.isNull())
        painter.fillRect(image_rect, QColor(0xee, 0xee, 0xee));
      else
        painter.drawImage(image_rect, image);
    } else {
      painter.fillRect(image_rect, QColor(0xee, 0xee, 0xee));
    }
    const QStringList lines = captionOf(model, row);
    for (int l = 0; l < lines.size() && l < 2; ++l)
      painter.drawText(
          QRect(x0, y0 + style.cell + l * caption.lineSpacing(), style.cell, caption.lineSpacing()),
          Qt::AlignHCenter | Qt::AlignVCenter,
          caption.elidedText(lines[l], Qt::ElideRight, style.cell + kGap - 2));
  }
  painter.restore();
}

QImage gridFigureImage(const ImageGridModel& model, const QString& title, double scale,
                       const GridFigureStyle& style) {
  const QSize size = gridFigureSize(model, title, style);
  QImage image(size * scale, QImage::Format_ARGB32_Premultiplied);
  image.fill(Qt::white);
  // The figure's size is at 96 dpi; the file records the resolution its pixels give.
  const int dots_per_meter = qRound(96 * scale / 0.0254);
  image.setDotsPerMeterX(dots_per_meter);
  image.setDotsPerMeterY(dots_per_meter);
  QPainter painter(&image);
  painter.scale(scale, scale);
  paintGridFigure(painter, model, title, style);
  painter.end();
  return image;
}

bool exportGridFigure(const ImageGridModel& model, const QString& title, const QString& path,
                      double scale, const GridFigureStyle& style) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  const QSize size = gridFigureSize(model, title, style);
  if (suffix == QLatin1String("png"))
    return gridFigureImage(model, title, scale, style).save(path, "PNG");
  if (suffix == QLatin1String("svg")) {
    QSvgGenerator generator;
    generator.setFileName(path);
    generator.setSize(size);
    generator.setViewBox(QRect(QPoint(0, 0), size));
    generator.setTitle(title);
    generator.setDescription(QStringLiteral("ModelDiff Studio image grid"));
    QPainter painter;
    if (!painter.begin(&generator)) return false;
    paintGridFigure(painter, model, title, style);
    return painter.end();
  }
  if (suffix == QLatin1String("pdf")) {
    QPdfWriter writer(path);
    writer.setTitle(title);
    writer.setCreator(QStringLiteral("ModelDiff Studio"));
    writer.setResolution(72);  // one unit of the figure per point
    writer.setPageSize(QPageSize(QSizeF(size), QPageSize::Point));
    writer.setPageMargins(QMarginsF(0, 0, 0, 0));
    QPainter painter;
    if (!painter.begin(&writer)) return false;
    paintGridFigure(painter, model, title, style);
    return painter.end() && QFileInfo(path).size() > 0;
  }
  return false;
}

}  // namespace modeldiff::ui
