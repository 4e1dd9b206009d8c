#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "render/render.h"
#include "render/render_filter.h"
#include "render/render_shade_cpu.h"

namespace iaenet {
namespace {

// Below these sizes a loop runs on one thread: a 224x224 view takes a fraction of a millisecond, and waking an
// OpenMP team costs 10-50 us (much more when other processes hold the cores).
constexpr int64_t kParallelPoints = int64_t{1} << 20;
constexpr int64_t kParallelPixels = int64_t{1} << 20;

// Lock-free z-buffer minimum for several threads: the keys are unique per point, so the final value does not
// depend on thread order.
struct AtomicMinKey {
  void operator()(int64_t* slot, int64_t key) const {
    int64_t seen = __atomic_load_n(slot, __ATOMIC_RELAXED);
    while (key < seen && !__atomic_compare_exchange_n(slot, &seen, key, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
  }
};

// Branch-free: whether a later point is nearer is a coin toss, and a mispredicted branch costs more than the store.
struct PlainMinKey {
  void operator()(int64_t* slot, int64_t key) const {
    const int64_t seen = *slot;
    *slot = key < seen ? key : seen;
  }
};

// Centre pixels in the organized mode: the grid row/column -> output row/column maps as tables (grid_h + grid_w
// entries) instead of two 64-bit divisions per point.
class GridCentres {
 public:
  GridCentres(const int64_t* grid, int64_t grid_h, int64_t grid_w, int64_t h, int64_t w)
      : grid_(grid), cells_(grid_h * grid_w), grid_w_(grid_w), inv_w_(1.0 / static_cast<double>(grid_w)),
        row_of_(grid_h), col_of_(grid_w) {
    for (int64_t g = 0; g < grid_h; ++g) row_of_[g] = static_cast<int32_t>(render_grid_to_pixel(g, grid_h, h));
    for (int64_t g = 0; g < grid_w; ++g) col_of_[g] = static_cast<int32_t>(render_grid_to_pixel(g, grid_w, w));
  }

  bool valid(int64_t i) const { return static_cast<uint64_t>(grid_[i]) < static_cast<uint64_t>(cells_); }

  // Centre pixel of point i (always inside the image) and its depth; false when it is not drawn.
  bool operator()(const RenderCamera& c, const float* points, int64_t i, int64_t* row, int64_t* col, float* z) const {
    float pc[3];
    render_to_camera(c, points + 3 * i, pc);
    *z = pc[2];
    if (!render_visible_depth(pc[2])) return false;
    int64_t grid_row, grid_col;
    render_grid_split(grid_[i], grid_w_, inv_w_, &grid_row, &grid_col);
    *row = row_of_[grid_row];
    *col = col_of_[grid_col];
    return true;
  }

  std::string describe_bad(int64_t i) const {
    return "grid_index: value " + std::to_string(grid_[i]) + " at position " + std::to_string(i) +
           " is outside [0, " + std::to_string(cells_) + ") for the grid of " + std::to_string(cells_ / grid_w_) +
           " x " + std::to_string(grid_w_) + " cells";
  }

 private:
  const int64_t* grid_;
  int64_t cells_, grid_w_;
  double inv_w_;
  std::vector<int32_t> row_of_, col_of_;
};

// Centre pixels in the pinhole mode: the projection (render_math.h). Every point index is valid.
struct ProjectedCentres {
  int64_t radius, h, w;

  bool valid(int64_t) const { return true; }

  bool operator()(const RenderCamera& c, const float* points, int64_t i, int64_t* row, int64_t* col, float* z) const {
    return render_point_centre(c, points, nullptr, 1, 1, i, radius, h, w, row, col, z);
  }

  std::string describe_bad(int64_t) const { return {}; }
};

// Whether to draw by "centre keys + minimum filter" (render_filter.h) rather than by splatting every point: the
// filter costs a few vectorised minima per pixel and splat row, the direct splat one scalar minimum per point and
// covered pixel, so the filter pays unless the cloud is sparse for the image.
bool use_filter(int64_t n, int64_t radius, int64_t h, int64_t w) {
  if (radius == 0) return false;  // the centre keys are the image
  const int64_t padded = (h + 2 * radius) * (w + 2 * radius);
  return 2 * n * (2 * radius + 1) >= padded;
}

// One pass over the points: records each point's centre pixel in `pixels` and offers its key either to the centre
// buffer (filter) or to every pixel its splat covers (direct). Returns the index of the first point whose grid
// index is out of range, or -1.
template <class Centres, class StoreMin>
int64_t draw_points(const Centres& centres, const RenderCamera& camera, const float* points, int64_t n,
                    int64_t radius, bool disc, bool filter, int64_t* target, int32_t* pixels, int64_t h, int64_t w,
                    bool parallel, const StoreMin& store_min) {
  const int64_t padded_w = w + 2 * radius;
  std::atomic<int64_t> first_bad{n};
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (parallel)
#endif
  for (int64_t i = 0; i < n; ++i) {
    int64_t row = -1, col = -1;
    float z = 0.0f;
    const bool valid = centres.valid(i);
    const bool drawn = valid && centres(camera, points, i, &row, &col, &z);
    const bool inside = drawn && row >= 0 && row < h && col >= 0 && col < w;
    pixels[2 * i] = inside ? static_cast<int32_t>(row) : -1;
    pixels[2 * i + 1] = inside ? static_cast<int32_t>(col) : -1;
    if (!valid) {
      int64_t seen = first_bad.load(std::memory_order_relaxed);
      while (i < seen && !first_bad.compare_exchange_weak(seen, i, std::memory_order_relaxed)) {
      }
    }
    if (!drawn) continue;
    const int64_t key = render_depth_key(z, i);
    if (filter) {
      store_min(target + (row + radius) * padded_w + col + radius, key);
    } else {
      render_splat_key(key, row, col, radius, disc, target, h, w, store_min);
    }
  }
  return first_bad.load() < n ? first_bad.load() : -1;
}

template <class Centres>
void draw(const Centres& centres, const RenderCamera& camera, const float* points, int64_t n, int64_t radius,
          bool disc, bool filter, int64_t* target, int32_t* pixels, int64_t h, int64_t w) {
  const bool parallel = n >= kParallelPoints;
  const int64_t bad = parallel ? draw_points(centres, camera, points, n, radius, disc, filter, target, pixels, h, w,
                                             true, AtomicMinKey())
                               : draw_points(centres, camera, points, n, radius, disc, filter, target, pixels, h, w,
                                             false, PlainMinKey());
  if (bad >= 0) throw std::invalid_argument("render: " + centres.describe_bad(bad));
}

void fill(int64_t* buffer, int64_t size, int64_t value) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (size >= kParallelPixels)
#endif
  for (int64_t p = 0; p < size; ++p) buffer[p] = value;
}

}  // namespace

void render_cpu(const float* points, const float* normals, int64_t n, const RenderCamera& camera, const int64_t* grid,
                int64_t grid_h, int64_t grid_w, int64_t radius, bool disc, int64_t* zbuf, float* image,
                int32_t* pixels, int64_t h, int64_t w) {
  const int64_t size = h * w;
  const bool filter = use_filter(n, radius, h, w);
  std::unique_ptr<int64_t[]> centre_keys;
  int64_t* target = zbuf;
  if (filter) {
    const int64_t padded = (h + 2 * radius) * (w + 2 * radius);
    centre_keys.reset(new int64_t[padded]);
    target = centre_keys.get();
    fill(target, padded, kRenderEmptyKey);
  } else {
    fill(zbuf, size, kRenderEmptyKey);
  }
  if (grid != nullptr) {
    draw(GridCentres(grid, grid_h, grid_w, h, w), camera, points, n, radius, disc, filter, target, pixels, h, w);
  } else {
    draw(ProjectedCentres{radius, h, w}, camera, points, n, radius, disc, filter, target, pixels, h, w);
  }
  if (filter) render_splat_filter(target, h, w, radius, disc, zbuf, size * (2 * radius + 1) >= kParallelPixels);
  render_shade_image(camera, points, normals, zbuf, size, image, size >= kParallelPixels);
}

}  // namespace iaenet
