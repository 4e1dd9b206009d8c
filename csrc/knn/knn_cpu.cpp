// Exact kNN on the CPU: a uniform grid (knn_grid.h) searched shell by shell around each query. Self queries
// first go through the block search (knn_block.h), which settles almost all of them; the rest come here.
//
// Shell s around the query's cell c is the set of cells at Chebyshev distance s from c. After shells 0..s
// every unvisited cell lies beyond one of the faces of the (2s+1)^3 block around c, so no unvisited point is
// closer than the nearest such face that still has cells behind it. The search stops once the current k-th
// distance is strictly below that bound (knn_face_bound makes it safe against rounding), which is why the
// result equals brute force, ties included: an unvisited point can neither beat nor tie the k-th.
#include <algorithm>
#include <cmath>
#include <vector>

#include "knn/knn.h"
#include "knn/knn_block.h"
#include "knn/knn_grid.h"
#include "knn/knn_math.h"

namespace iaenet {
namespace {

// Occupied cells hold about this many points: a fraction of k, so that the k nearest lie within a couple of
// shells (few empty-cell look-ups) while whole cells beyond the k-th distance are skipped without reading
// their points. Timings on a real scan hardly changed between k/10 and k (floor 4 to 16); any value keeps
// the search exact.
double target_occupancy(int64_t k) { return std::max(4.0, 0.25 * static_cast<double>(k)); }

// The candidates of one query as unique keys (knn_key: distance bits above, index below), so that selection
// and sorting compare single integers and the tie rule comes for free. The buffer grows to 2k before it is cut
// back to the k best with nth_element: amortised O(1) per candidate instead of a heap's O(log k).
class QuerySearch {
 public:
  QuerySearch(const UniformGrid& grid, int64_t k) : grid_(grid), k_(k) { keys_.reserve(2 * k + 1); }

  // Writes the k nearest neighbours of q, sorted, into idx/dist2 (k entries each).
  void run(const float* q, int64_t* idx, float* dist2) {
    keys_.clear();
    threshold_ = UINT64_MAX;
    int64_t c[3];
    grid_.cell_of(q, c);
    const double margin = grid_.boundary_margin(std::max({std::abs(q[0]), std::abs(q[1]), std::abs(q[2])}));
    for (int64_t s = 0;; ++s) {
      if (shell_rows(c, s) > static_cast<double>(grid_.rows())) {
        // Far-reaching searches (clusters separated by wide empty space) would look up huge empty shells:
        // reading the occupied cells directly is cheaper from here on, and finishes the search.
        visit_remaining(q, c, s, margin);
        break;
      }
      visit_shell(q, c, s, margin);
      double bound;
      if (!grid_.beyond_block_bound(q, c, s, margin, &bound)) break;  // every cell visited
      if (keys_.size() >= static_cast<size_t>(k_) && kth_distance() < bound) break;
    }
    keep_best();
    std::sort(keys_.begin(), keys_.end());
    for (int64_t j = 0; j < k_; ++j) {
      idx[j] = static_cast<int64_t>(keys_[j] & 0xffffffffu);
      dist2[j] = knn_bits_dist(static_cast<uint32_t>(keys_[j] >> 32));
    }
  }

 private:
  // Cuts the buffer to its k best keys; the k-th becomes the threshold a new candidate must beat.
  void keep_best() {
    if (keys_.size() < static_cast<size_t>(k_)) return;
    std::nth_element(keys_.begin(), keys_.begin() + (k_ - 1), keys_.end());
    keys_.resize(k_);
    threshold_ = keys_[k_ - 1];
  }

  // The current k-th distance (the buffer must hold at least k keys).
  double kth_distance() {
    if (keys_.size() > static_cast<size_t>(k_) || threshold_ == UINT64_MAX) keep_best();
    return static_cast<double>(knn_bits_dist(static_cast<uint32_t>(threshold_ >> 32)));
  }

  // Cells at Chebyshev distance exactly s from c, clipped to the grid: the cells x0..x1 of the rows where
  // |dy| or |dz| is s, and only the two cells x = c_x -+ s of the other rows.
  void visit_shell(const float* q, const int64_t c[3], int64_t s, double margin) {
    const int64_t z0 = std::max<int64_t>(0, c[2] - s), z1 = std::min(grid_.dims(2) - 1, c[2] + s);
    const int64_t y0 = std::max<int64_t>(0, c[1] - s), y1 = std::min(grid_.dims(1) - 1, c[1] + s);
    const int64_t x0 = std::max<int64_t>(0, c[0] - s), x1 = std::min(grid_.dims(0) - 1, c[0] + s);
    for (int64_t z = z0; z <= z1; ++z) {
      for (int64_t y = y0; y <= y1; ++y) {
        const int64_t row = grid_.find_row(y, z);
        if (row < 0) continue;
        if (std::abs(z - c[2]) == s || std::abs(y - c[1]) == s) {
          visit_cells(q, row, y, z, x0, x1, margin);
        } else {
          visit_cells(q, row, y, z, c[0] - s, c[0] - s, margin);
          visit_cells(q, row, y, z, c[0] + s, c[0] + s, margin);
        }
      }
    }
  }

  // Number of row look-ups shell s around c takes (its (y, z) extent, clipped to the grid).
  double shell_rows(const int64_t c[3], int64_t s) const {
    double rows = 1.0;
    for (int a = 1; a < 3; ++a)
      rows *= static_cast<double>(std::min(grid_.dims(a) - 1, c[a] + s) - std::max<int64_t>(0, c[a] - s) + 1);
    return rows;
  }

  // Visits every occupied cell at Chebyshev distance >= s from c, i.e. all cells the shells 0..s-1 missed.
  void visit_remaining(const float* q, const int64_t c[3], int64_t s, double margin) {
    for (int64_t row = 0; row < grid_.rows(); ++row) {
      const int64_t y = grid_.row_y(row), z = grid_.row_z(row);
      if (std::max(std::abs(y - c[1]), std::abs(z - c[2])) >= s) {
        visit_cells(q, row, y, z, 0, grid_.dims(0) - 1, margin);
      } else {  // inside the block in y and z: only the cells beyond it in x
        visit_cells(q, row, y, z, 0, c[0] - s, margin);
        visit_cells(q, row, y, z, c[0] + s, grid_.dims(0) - 1, margin);
      }
    }
  }

  // The occupied cells of `row` with x in [xa, xb].
  void visit_cells(const float* q, int64_t row, int64_t y, int64_t z, int64_t xa, int64_t xb, double margin) {
    if (xa > xb || xb < 0 || xa >= grid_.dims(0)) return;
    for (int64_t cell = grid_.first_cell_from(row, xa), end = grid_.row_begin(row + 1);
         cell < end && grid_.cell_x(cell) <= xb; ++cell) {
      scan_cell(q, cell, grid_.cell_x(cell), y, z, margin);
    }
  }

  void scan_cell(const float* q, int64_t cell, int64_t x, int64_t y, int64_t z, double margin) {
    // Once k candidates are known, cells whose box lies entirely beyond the k-th distance are skipped.
    if (threshold_ != UINT64_MAX &&
        grid_.cell_bound(q, x, y, z, margin) > static_cast<double>(knn_bits_dist(static_cast<uint32_t>(threshold_ >> 32))))
      return;
    const int64_t* order = grid_.sorted_points().data();
    const float* xyz = grid_.sorted_xyz();
    for (int64_t j = grid_.cell_begin(cell), end = grid_.cell_begin(cell + 1); j < end; ++j) {
      const uint64_t key = knn_key(knn_sq_dist(xyz + 3 * j, q), order[j]);
      if (key < threshold_) keys_.push_back(key);
    }
    if (keys_.size() >= static_cast<size_t>(2 * k_)) keep_best();
  }

  const UniformGrid& grid_;
  int64_t k_;
  std::vector<uint64_t> keys_;
  uint64_t threshold_ = UINT64_MAX;  // the k-th best key so far; UINT64_MAX until k candidates are known
};

// Query order by grid cell, so that consecutive queries touch the same cells (cache locality).
std::vector<int64_t> queries_by_cell(const UniformGrid& grid, const float* queries, int64_t m) {
  std::vector<std::pair<uint64_t, int64_t>> keyed(m);
  for (int64_t i = 0; i < m; ++i) {
    int64_t c[3];
    grid.cell_of(queries + 3 * i, c);
    keyed[i] = {grid.cell_key(c[0], c[1], c[2]), i};
  }
  std::sort(keyed.begin(), keyed.end());
  std::vector<int64_t> order(m);
  for (int64_t i = 0; i < m; ++i) order[i] = keyed[i].second;
  return order;
}

}  // namespace

void knn_cpu(const float* points, int64_t n, const float* queries, int64_t m, int64_t k, int64_t* idx, float* dist2) {
  if (m == 0) return;
  const bool self = queries == points && m == n;
  const UniformGrid grid(points, n, self ? block_target_occupancy(k) : target_occupancy(k));
  // Self queries: the block search settles almost every point; the shell search finishes the rest.
  const std::vector<int64_t> order = self ? knn_self_blocks(grid, k, idx, dist2)
                                                                   : queries_by_cell(grid, queries, m);
#ifdef _OPENMP
#pragma omp parallel
#endif
  {
    QuerySearch search(grid, k);
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 64)
#endif
    for (int64_t j = 0; j < static_cast<int64_t>(order.size()); ++j) {
      const int64_t i = order[j];
      search.run(queries + 3 * i, idx + i * k, dist2 + i * k);
    }
  }
}

}  // namespace iaenet
