// Grids of captioned images: how a person looks at the training examples a direction or a
// score singles out ("the 20 images most specific to algorithm A").
//
// Layout, top to bottom: a title row (when the style has a title), then rows of `columns`
// cells. Each cell is `cell` x `cell` pixels holding one image, scaled to fit inside a small
// margin with its aspect ratio kept (nearest-neighbour when enlarging, so 28 x 28 pixels stay
// crisp squares; area averaging when shrinking) and framed by a thin grey line, followed by a
// caption strip with the image's caption in small dark text, shrunk to fit the cell, wrapped
// onto two lines at a space when one line would be unreadably small, and cut with ".." when
// even that does not fit. Background white. Gray images are shown gray; float images are
// min-max scaled as display_image() does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/ndarray.h"
#include "core/data/image_dataset.h"

namespace modeldiff::core {

struct GridStyle {
  int columns = 10;   // cells per row (1 to 256)
  int cell = 96;      // pixels per image side (16 to 1024)
  std::string title;  // empty: no title row
};

// Where things go in a grid of `count` images; all in pixels, (x, y) = (column, row).
struct GridLayout {
  int columns = 0, rows = 0;
  int cell = 0;
  int margin = 0;          // between a cell's edge and the largest image it can hold
  int caption_height = 0;  // per row, below the cells; 0 without captions
  int title_height = 0;    // 0 without a title
  int width = 0;           // columns * cell
  int height = 0;          // title_height + rows * (cell + caption_height)

  // Top-left corner of cell i (row-major: i = row * columns + column).
  int cell_x(int i) const { return (i % columns) * cell; }
  int cell_y(int i) const { return title_height + (i / columns) * (cell + caption_height); }
  // Top edge of cell i's caption strip.
  int caption_y(int i) const { return cell_y(i) + cell; }
};

// The layout render_image_grid() uses. Throws InputError for a style out of range, no images,
// or a grid larger than 32767 pixels either way (too many images for one picture).
GridLayout image_grid_layout(std::size_t count, bool with_captions, const GridStyle& style);

// The grid of images `indices` of `data` (row-major, in that order) as an H x W x 3 uint8
// RGB image, H x W = layout.height x layout.width. `captions` is empty (no caption strips) or
// holds one caption per index (asserted). Images in `data` are N x H x W x C uint8 or
// N x C x H x W float32 (see ImageDataset). Throws InputError for an index out of range.
NdArray render_image_grid(const ImageDataset& data, const std::vector<std::int64_t>& indices,
                          const std::vector<std::string>& captions, const GridStyle& style);

// render_image_grid() saved as a PNG file at `path`, atomically (a temporary file beside it,
// renamed over `path` when complete). Throws InputError naming `path` when it cannot be
// written.
void write_image_grid_png(const std::string& path, const ImageDataset& data,
                          const std::vector<std::int64_t>& indices,
                          const std::vector<std::string>& captions, const GridStyle& style);

}  // namespace modeldiff::core
