// A uniform grid over a point cloud for exact neighbour search on the CPU.
//
// Scanned surfaces are 2-manifold: in any 3-D grid fine enough to be useful most cells are empty, and thin or
// very anisotropic clouds would make a dense cell array explode. The grid therefore stores only what is
// occupied, in a sorted layout: the point indices (and a copy of their coordinates) sorted by cell, the
// occupied cells sorted by (z, y, x), grouped into rows of equal (y, z), and a hash table from a row's key to
// the row. A search looks a row up once and then walks or bisects its sorted cells, so empty rows cost one
// probe and empty cells inside a row cost nothing. Memory is O(N) whatever the shape.
#pragma once

#include <cstdint>
#include <vector>

namespace iaenet {

class UniformGrid {
 public:
  // Builds the grid over `points` (n, 3) with a cell size chosen so that an occupied cell holds about
  // `target_occupancy` points (see choose_cell_size in knn_grid.cpp).
  UniformGrid(const float* points, int64_t n, double target_occupancy);

  double cell_size() const { return cell_; }
  double origin(int axis) const { return origin_[axis]; }
  int64_t dims(int axis) const { return dims_[axis]; }
  // Absolute slack that covers the double-precision rounding of cell boundaries (see knn_face_bound).
  double boundary_margin(double query_abs_max) const { return 1e-10 * (scale_ + query_abs_max); }

  // The cell holding coordinate p, clamped into the grid (queries outside the bounding box get the nearest
  // cell, which keeps the shell search exact: see knn_cpu.cpp).
  void cell_of(const float* p, int64_t cell[3]) const;

  // Lower bound on the computed squared distance from q (in cell c) to any point outside the block of cells
  // within Chebyshev distance s of c: the nearest block face with grid cells behind it (knn_face_bound).
  // Returns false when no such cell exists.
  bool beyond_block_bound(const float* q, const int64_t c[3], int64_t s, double margin, double* bound) const;

  // Lower bound on the computed squared distance from q to any point of cell (x, y, z).
  double cell_bound(const float* q, int64_t x, int64_t y, int64_t z, double margin) const;

  int64_t occupied_cells() const { return static_cast<int64_t>(cell_x_.size()); }
  int64_t rows() const { return static_cast<int64_t>(row_keys_.size()); }
  // Position of the row (y, z) in [0, rows()), or -1 when it holds no point.
  int64_t find_row(int64_t y, int64_t z) const;
  // y and z of a row.
  int64_t row_y(int64_t row) const { return static_cast<int64_t>(row_keys_[row] % static_cast<uint64_t>(dims_[1])); }
  int64_t row_z(int64_t row) const { return static_cast<int64_t>(row_keys_[row] / static_cast<uint64_t>(dims_[1])); }
  // The occupied cells of a row are [row_begin(row), row_begin(row + 1)), ascending in x.
  int64_t row_begin(int64_t row) const { return row_starts_[row]; }
  // The first occupied cell of `row` with x >= x0 (row_begin(row + 1) if none).
  int64_t first_cell_from(int64_t row, int64_t x0) const;
  int64_t cell_x(int64_t cell) const { return cell_x_[cell]; }
  // The points of occupied cell c are sorted_points()[cell_begin(c) .. cell_begin(c + 1)), with their
  // coordinates at sorted_xyz() + 3 * j (a copy in cell order, so a cell's points are read contiguously).
  int64_t cell_begin(int64_t c) const { return cell_starts_[c]; }
  const std::vector<int64_t>& sorted_points() const { return order_; }
  const float* sorted_xyz() const { return xyz_.data(); }

  // Linear keys: cells ordered by (z, y, x), rows by (z, y); both fit 63 bits (dims are capped per axis).
  uint64_t cell_key(int64_t x, int64_t y, int64_t z) const {
    return static_cast<uint64_t>(x) + static_cast<uint64_t>(dims_[0]) * row_key(y, z);
  }
  uint64_t row_key(int64_t y, int64_t z) const {
    return static_cast<uint64_t>(y) + static_cast<uint64_t>(dims_[1]) * static_cast<uint64_t>(z);
  }

 private:
  double choose_cell_size(const float* points, int64_t n, double target_occupancy, double extent_max);
  int64_t count_occupied(const float* points, int64_t n, double cell);
  void set_dims(double cell);

  double origin_[3] = {0, 0, 0};
  double upper_[3] = {0, 0, 0};
  double cell_ = 1.0;
  double scale_ = 0.0;  // largest coordinate magnitude plus the largest extent
  int64_t dims_[3] = {1, 1, 1};
  std::vector<int64_t> order_;        // point indices sorted by (cell key, index)
  std::vector<float> xyz_;            // their coordinates, (N, 3) in that order
  std::vector<int64_t> cell_starts_;  // occupied_cells() + 1 offsets into order_
  std::vector<int32_t> cell_x_;       // x of each occupied cell
  std::vector<uint64_t> row_keys_;    // ascending keys of the occupied rows
  std::vector<int64_t> row_starts_;   // rows() + 1 offsets into the cells
  std::vector<int64_t> slots_;        // hash table: row position or -1
  uint64_t slot_mask_ = 0;
};

}  // namespace iaenet
