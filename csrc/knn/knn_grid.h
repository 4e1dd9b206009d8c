// A uniform grid over a point cloud for exact neighbour search on the CPU.
//
// Scanned surfaces are 2-manifold: in any 3-D grid fine enough to be useful most cells are empty, and thin or
// very anisotropic clouds would make a dense cell array explode. The grid therefore stores only the occupied
// cells: the point indices sorted by cell (then by index), the start of each occupied cell in that order, and
// an open-addressing hash table from a cell's linear key to its position. Memory is O(N) whatever the shape.
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
  uint64_t key(int64_t ix, int64_t iy, int64_t iz) const {
    return static_cast<uint64_t>(ix) + static_cast<uint64_t>(dims_[0]) * (static_cast<uint64_t>(iy) +
                                                                         static_cast<uint64_t>(dims_[1]) * iz);
  }
  // Grid coordinates of occupied cell c.
  void coords_of(int64_t c, int64_t cell[3]) const {
    const uint64_t k = cell_keys_[c], nx = dims_[0], ny = dims_[1];
    cell[0] = static_cast<int64_t>(k % nx);
    cell[1] = static_cast<int64_t>((k / nx) % ny);
    cell[2] = static_cast<int64_t>(k / nx / ny);
  }
  // Position of the occupied cell with this key in [0, occupied_cells()), or -1 when the cell is empty.
  int64_t find(uint64_t key) const;
  int64_t occupied_cells() const { return static_cast<int64_t>(cell_keys_.size()); }
  // The points of occupied cell c are sorted_points()[cell_begin(c) .. cell_begin(c + 1)), with their
  // coordinates at sorted_xyz() + 3 * j (a copy in cell order, so a cell's points are read contiguously).
  int64_t cell_begin(int64_t c) const { return cell_starts_[c]; }
  const std::vector<int64_t>& sorted_points() const { return order_; }
  const float* sorted_xyz() const { return xyz_.data(); }

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
  std::vector<uint64_t> cell_keys_;   // ascending keys of the occupied cells
  std::vector<int64_t> slots_;        // hash table: cell position or -1
  uint64_t slot_mask_ = 0;
};

}  // namespace iaenet
