// Image grids as figures for papers and slides: a title, then the grid's shown images in rows,
// each drawn at `cell` pixels with its caption (index, class, value) underneath; a planted
// patch keeps its orange frame. Written as PNG (at `scale` x), SVG or PDF by the file's
// extension, or as an image for the clipboard.
#pragma once

#include <QImage>
#include <QSize>
#include <QString>

class QPainter;

namespace modeldiff::ui {

class ImageGridModel;

struct GridFigureStyle {
  int columns = 10;   // images per row (fewer when the grid has fewer)
  int cell = 96;      // image side in pixels (points for SVG/PDF)
  int font_size = 9;  // caption size in points at scale 1; the title is 1.3x
};

// The figure's size at scale 1.
QSize gridFigureSize(const ImageGridModel& model, const QString& title,
                     const GridFigureStyle& style = {});
// Paints the figure at the painter's origin, at scale 1 (scale the painter for more pixels).
void paintGridFigure(QPainter& painter, const ImageGridModel& model, const QString& title,
                     const GridFigureStyle& style = {});
// The figure as an image, `scale` x its size.
QImage gridFigureImage(const ImageGridModel& model, const QString& title, double scale = 2,
                       const GridFigureStyle& style = {});
// Writes the figure to `path`: .png (`scale` x), .svg or .pdf. False when it cannot be written
// or the extension is none of those.
bool exportGridFigure(const ImageGridModel& model, const QString& title, const QString& path,
                      double scale = 2, const GridFigureStyle& style = {});

}  // namespace modeldiff::ui
