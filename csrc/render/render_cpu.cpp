#include <algorithm>
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

// Points are located a block at a time (vectorised: no branch, no store the next point could depend on), then
// their keys are stored one by one.
constexpr int64_t kBlock = 512;

// One block of located points: centre pixel and key; key kRenderEmptyKey for a point that is not drawn (its
// row/col then point at a harmless pixel: the empty key never lowers a minimum).
struct Located {
  int32_t row[kBlock], col[kBlock];
  int64_t key[kBlock];
};

// The organized locator's loop (GridCentres::locate). A free function with restrict pointers: the compiler must
// know that the stores do not alias the tables it gathers from, or it will not vectorise the loop.
__attribute__((always_inline)) inline int64_t locate_grid(
    const RenderCamera& c, const float* __restrict__ points, const int64_t* __restrict__ grid, uint64_t cells,
    RenderDivisor width, const int32_t* __restrict__ row_of, const int32_t* __restrict__ col_of, int32_t parked,
    int64_t begin, int64_t end, int32_t* __restrict__ out_row, int32_t* __restrict__ out_col,
    int64_t* __restrict__ out_key, int32_t* __restrict__ pixels) {
  const RenderCamera cam = c;  // a local: as far as the compiler knows, the stores could alias the caller's camera
  int64_t invalid = 0;
  for (int64_t i = begin; i < end; ++i) {
    float pc[3];
    render_to_camera(cam, points + 3 * i, pc);
    const int64_t g = grid[i];
    const bool valid = static_cast<uint64_t>(g) < cells;
    // An invalid index is looked up as the last cell: a minimum, not a conditional on `valid`, which GCC would
    // turn into a branch (and then not vectorise the loop).
    const uint64_t cell = std::min(static_cast<uint64_t>(g), cells - 1);
    int32_t grid_row, grid_col;
    render_grid_split(static_cast<int32_t>(cell), width, &grid_row, &grid_col);
    const bool drawn = valid & render_visible_depth(pc[2]);
    const int32_t row = row_of[grid_row], col = col_of[grid_col];
    pixels[2 * i] = drawn ? row : -1;
    pixels[2 * i + 1] = drawn ? col : -1;
    out_row[i - begin] = drawn ? row : parked;
    out_col[i - begin] = drawn ? col : parked;
    out_key[i - begin] = drawn ? render_depth_key(pc[2], i) : kRenderEmptyKey;
    invalid += valid ? 0 : 1;
  }
  return invalid;
}

// Centre pixels in the organized mode: grid row/column -> output row/column as tables (grid_h + grid_w entries)
// instead of divisions per point.
class GridCentres {
 public:
  GridCentres(const int64_t* grid, int64_t grid_h, int64_t grid_w, int64_t h, int64_t w, int64_t radius)
      : grid_(grid), cells_(static_cast<uint64_t>(grid_h * grid_w)),
        width_(render_divisor(static_cast<int32_t>(grid_w))), parked_(static_cast<int32_t>(-radius)), row_of_(grid_h),
        col_of_(grid_w) {
    for (int64_t g = 0; g < grid_h; ++g) row_of_[g] = static_cast<int32_t>(render_grid_to_pixel(g, grid_h, h));
    for (int64_t g = 0; g < grid_w; ++g) col_of_[g] = static_cast<int32_t>(render_grid_to_pixel(g, grid_w, w));
  }

  // Locates points [begin, end) into out (index i - begin) and pixels; returns how many have a grid index out of
  // range (they are not drawn). The grid cell always lies inside the image.
  __attribute__((always_inline)) int64_t locate(const RenderCamera& c, const float* points, int64_t begin,
                                                int64_t end, Located& out, int32_t* pixels) const {
    return locate_grid(c, points, grid_, cells_, width_, row_of_.data(), col_of_.data(), parked_, begin, end, out.row,
                       out.col, out.key, pixels);
  }

  std::string first_invalid(int64_t n) const {
    int64_t i = 0;
    while (i < n && static_cast<uint64_t>(grid_[i]) < cells_) ++i;
    return "grid_index: value " + std::to_string(grid_[i]) + " at position " + std::to_string(i) +
           " is outside [0, " + std::to_string(cells_) + ") for the grid of " +
           std::to_string(cells_ / static_cast<uint64_t>(width_.d)) + " x " + std::to_string(width_.d) + " cells";
  }

 private:
  const int64_t* grid_;
  uint64_t cells_;
  RenderDivisor width_;
  int32_t parked_;
  std::vector<int32_t> row_of_, col_of_;
};

// Centre pixels in the pinhole mode: the projection of render_math.h (render_point_centre) without branches.
struct ProjectedCentres {
  int64_t radius, h, w;

  __attribute__((always_inline)) int64_t locate(const RenderCamera& c, const float* points, int64_t begin,
                                                int64_t end, Located& __restrict__ out,
                                                int32_t* __restrict__ pixels) const {
    const RenderCamera cam = c;  // a local: the stores below could alias it as far as the compiler knows
    const int32_t parked = static_cast<int32_t>(-radius);
    for (int64_t i = begin; i < end; ++i) {
      float pc[3], y, x;
      render_to_camera(cam, points + 3 * i, pc);
      render_project(cam, pc, &y, &x);
      const bool drawn = render_visible_depth(pc[2]) & render_splat_touches(y, x, radius, h, w);
      // the splat test bounds y and x, so the conversion is exact where it counts
      const int32_t row = render_floor32(render_select(drawn, y, 0.0f));
      const int32_t col = render_floor32(render_select(drawn, x, 0.0f));
      const bool inside = drawn & (row >= 0) & (row < h) & (col >= 0) & (col < w);
      pixels[2 * i] = inside ? row : -1;
      pixels[2 * i + 1] = inside ? col : -1;
      out.row[i - begin] = drawn ? row : parked;
      out.col[i - begin] = drawn ? col : parked;
      out.key[i - begin] = drawn ? render_depth_key(pc[2], i) : kRenderEmptyKey;
    }
    return 0;
  }

  std::string first_invalid(int64_t) const { return {}; }
};

// Both block locators compiled for AVX2 and the baseline ISA, picked at run time. Not for AVX-512: GCC's
// -mavx512f also enables FMA, and contracting a * b + c would change the depths' bits.
template <class Centres>
__attribute__((target("avx2"))) int64_t locate_avx2(const Centres& centres, const RenderCamera& c,
                                                    const float* points, int64_t begin, int64_t end, Located& out,
                                                    int32_t* pixels) {
  return centres.locate(c, points, begin, end, out, pixels);
}

template <class Centres>
int64_t locate_portable(const Centres& centres, const RenderCamera& c, const float* points, int64_t begin,
                        int64_t end, Located& out, int32_t* pixels) {
  return centres.locate(c, points, begin, end, out, pixels);
}

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

// Whether to draw by "centre keys + minimum filter" (render_filter.h) rather than by splatting every point: the
// filter costs a few vectorised minima per pixel and splat row, the direct splat one scalar minimum per point and
// covered pixel, so the filter pays unless the cloud is sparse for the image.
bool use_filter(int64_t n, int64_t radius, int64_t h, int64_t w) {
  if (radius == 0) return false;  // the centre keys are the image
  const int64_t padded = (h + 2 * radius) * (w + 2 * radius);
  return 2 * n * (2 * radius + 1) >= padded;
}

// Offers the keys of one located block: to the padded centre buffer (filter) or to every covered pixel (direct).
template <class StoreMin>
void store_block(const Located& located, int64_t count, int64_t radius, bool disc, bool filter, int64_t* target,
                 int64_t h, int64_t w, const StoreMin& store_min) {
  if (filter) {
    const int64_t padded_w = w + 2 * radius;
    for (int64_t j = 0; j < count; ++j)
      store_min(target + (located.row[j] + radius) * padded_w + located.col[j] + radius, located.key[j]);
  } else {
    for (int64_t j = 0; j < count; ++j)
      if (located.key[j] != kRenderEmptyKey)
        render_splat_key(located.key[j], located.row[j], located.col[j], radius, disc, target, h, w, store_min);
  }
}

// All points: their centre pixels into `pixels`, their keys into `target`. Throws when a grid index is out of range.
template <class Centres>
void draw(const Centres& centres, const RenderCamera& camera, const float* points, int64_t n, int64_t radius,
          bool disc, bool filter, int64_t* target, int32_t* pixels, int64_t h, int64_t w) {
  static const auto locate = __builtin_cpu_supports("avx2") ? locate_avx2<Centres> : locate_portable<Centres>;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  const bool parallel = n >= kParallelPoints;
  int64_t invalid = 0;
#ifdef _OPENMP
#pragma omp parallel if (parallel) reduction(+ : invalid)
#endif
  {
    std::unique_ptr<Located> located(new Located);
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t begin = b * kBlock, end = std::min(n, begin + kBlock);
      invalid += locate(centres, camera, points, begin, end, *located, pixels);
      if (parallel) {
        store_block(*located, end - begin, radius, disc, filter, target, h, w, AtomicMinKey());
      } else {
        store_block(*located, end - begin, radius, disc, filter, target, h, w, PlainMinKey());
      }
    }
  }
  if (invalid > 0) throw std::invalid_argument("render: " + centres.first_invalid(n));
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
    draw(GridCentres(grid, grid_h, grid_w, h, w, radius), camera, points, n, radius, disc, filter, target, pixels, h,
         w);
  } else {
    draw(ProjectedCentres{radius, h, w}, camera, points, n, radius, disc, filter, target, pixels, h, w);
  }
  if (filter) render_splat_filter(target, h, w, radius, disc, zbuf, size * (2 * radius + 1) >= kParallelPixels);
  render_shade_image(camera, points, normals, zbuf, size, image, size >= kParallelPixels);
}

}  // namespace iaenet
