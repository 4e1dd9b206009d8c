#include "knn/knn_grid.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "knn/knn_math.h"

namespace iaenet {
namespace {

// Cells per axis are capped so that a linear key ix + nx (iy + ny iz) fits 63 bits.
constexpr int64_t kMaxDimsPerAxis = int64_t(1) << 21;
// Refinement rounds of the cell size (each one sorts the cell keys once).
constexpr int kSizeRounds = 3;

uint64_t mix(uint64_t key) { return key * 0x9E3779B97F4A7C15ull; }

}  // namespace

UniformGrid::UniformGrid(const float* points, int64_t n, double target_occupancy) {
  double abs_max = 0.0;
  for (int a = 0; a < 3; ++a) {
    origin_[a] = points[a];
    upper_[a] = points[a];
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int a = 0; a < 3; ++a) {
      const double v = points[3 * i + a];
      origin_[a] = std::min(origin_[a], v);
      upper_[a] = std::max(upper_[a], v);
      abs_max = std::max(abs_max, std::abs(v));
    }
  }
  const double extent_max = std::max({upper_[0] - origin_[0], upper_[1] - origin_[1], upper_[2] - origin_[2]});
  scale_ = abs_max + extent_max;
  cell_ = choose_cell_size(points, n, target_occupancy, extent_max);
  set_dims(cell_);

  std::vector<std::pair<uint64_t, int64_t>> keyed(n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t c[3];
    cell_of(points + 3 * i, c);
    keyed[i] = {cell_key(c[0], c[1], c[2]), i};
  }
  std::sort(keyed.begin(), keyed.end());
  order_.resize(n);
  xyz_.resize(3 * n);
  const uint64_t nx = static_cast<uint64_t>(dims_[0]);
  for (int64_t i = 0; i < n; ++i) {
    order_[i] = keyed[i].second;
    for (int a = 0; a < 3; ++a) xyz_[3 * i + a] = points[3 * order_[i] + a];
    const uint64_t key = keyed[i].first;
    if (i > 0 && key == keyed[i - 1].first) continue;
    const uint64_t row = key / nx;
    if (row_keys_.empty() || row != row_keys_.back()) {
      row_keys_.push_back(row);
      row_starts_.push_back(occupied_cells());
    }
    cell_x_.push_back(static_cast<int32_t>(key % nx));
    cell_starts_.push_back(i);
  }
  cell_starts_.push_back(n);
  row_starts_.push_back(occupied_cells());

  uint64_t slots = 2;
  while (slots < 2 * row_keys_.size()) slots <<= 1;  // load factor <= 1/2 keeps probe chains short
  slot_mask_ = slots - 1;
  slots_.assign(slots, -1);
  for (int64_t r = 0; r < rows(); ++r) {
    uint64_t s = mix(row_keys_[r]) & slot_mask_;
    while (slots_[s] >= 0) s = (s + 1) & slot_mask_;
    slots_[s] = r;
  }
}

void UniformGrid::cell_of(const float* p, int64_t cell[3]) const {
  for (int a = 0; a < 3; ++a) {
    const double t = std::floor((static_cast<double>(p[a]) - origin_[a]) / cell_);
    cell[a] = t < 0 ? 0 : (t >= static_cast<double>(dims_[a]) ? dims_[a] - 1 : static_cast<int64_t>(t));
  }
}

int64_t UniformGrid::find_row(int64_t y, int64_t z) const {
  const uint64_t key = row_key(y, z);
  uint64_t s = mix(key) & slot_mask_;
  for (;;) {
    const int64_t r = slots_[s];
    if (r < 0 || row_keys_[r] == key) return r;
    s = (s + 1) & slot_mask_;
  }
}

bool UniformGrid::beyond_block_bound(const float* q, const int64_t c[3], int64_t s, double margin,
                                     double* bound) const {
  bool any = false;
  double best = HUGE_VAL;
  for (int a = 0; a < 3; ++a) {
    if (c[a] - s - 1 >= 0) {
      any = true;
      best = std::min(best, knn_face_bound(q[a] - (origin_[a] + static_cast<double>(c[a] - s) * cell_), margin));
    }
    if (c[a] + s + 1 < dims_[a]) {
      any = true;
      best = std::min(best, knn_face_bound(origin_[a] + static_cast<double>(c[a] + s + 1) * cell_ - q[a], margin));
    }
  }
  *bound = best;
  return any;
}

double UniformGrid::cell_bound(const float* q, int64_t x, int64_t y, int64_t z, double margin) const {
  const int64_t cell[3] = {x, y, z};
  double sum = 0.0;
  for (int a = 0; a < 3; ++a) {
    const double lo = origin_[a] + static_cast<double>(cell[a]) * cell_;
    const double gap = std::max({lo - q[a], q[a] - (lo + cell_), 0.0});
    sum += knn_face_bound(gap, margin);
  }
  return sum;
}

int64_t UniformGrid::first_cell_from(int64_t row, int64_t x0) const {
  const auto begin = cell_x_.begin() + row_starts_[row], end = cell_x_.begin() + row_starts_[row + 1];
  return std::lower_bound(begin, end, x0) - cell_x_.begin();
}

// Starts from the cell size at which a flat sheet spanning the largest extent would put `target` points in a
// cell (scans are surfaces), then corrects it from the measured mean occupancy of the occupied cells, again
// under the surface assumption (occupancy ~ size^2). Lines and volumes converge too, more slowly; any size
// keeps the search exact, the choice only affects speed.
double UniformGrid::choose_cell_size(const float* points, int64_t n, double target, double extent_max) {
  if (!(extent_max > 0.0)) return 1.0;  // all points coincide: one cell
  const double smallest = extent_max / static_cast<double>(kMaxDimsPerAxis - 1);
  double cell = std::max(smallest, extent_max * std::sqrt(std::min(1.0, target / static_cast<double>(n))));
  for (int round = 0; round < kSizeRounds; ++round) {
    const double occupancy = static_cast<double>(n) / static_cast<double>(count_occupied(points, n, cell));
    if (occupancy > 0.5 * target && occupancy < 2.0 * target) break;
    const double factor = std::clamp(std::sqrt(target / occupancy), 0.25, 4.0);
    const double next = std::clamp(cell * factor, smallest, extent_max);
    if (next == cell) break;
    cell = next;
  }
  return cell;
}

int64_t UniformGrid::count_occupied(const float* points, int64_t n, double cell) {
  set_dims(cell);
  cell_ = cell;
  std::vector<uint64_t> keys(n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t c[3];
    cell_of(points + 3 * i, c);
    keys[i] = cell_key(c[0], c[1], c[2]);
  }
  std::sort(keys.begin(), keys.end());
  return static_cast<int64_t>(std::unique(keys.begin(), keys.end()) - keys.begin());
}

void UniformGrid::set_dims(double cell) {
  for (int a = 0; a < 3; ++a) {
    const double cells = std::floor((upper_[a] - origin_[a]) / cell) + 1.0;
    dims_[a] = std::min<int64_t>(kMaxDimsPerAxis, static_cast<int64_t>(cells));
  }
}

}  // namespace iaenet
