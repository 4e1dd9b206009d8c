#include "render/render.h"

namespace iaenet {
namespace {

// Below this many pixel updates (points x splat area) a view takes about a millisecond on one core, and waking an
// OpenMP team costs more than it saves (much more when other processes hold the cores), so the loop runs serially.
constexpr int64_t kParallelSplatWork = int64_t{1} << 22;
constexpr int64_t kParallelPixels = int64_t{1} << 20;

// Lock-free minimum: the z-buffer keys are unique per point, so the final value does not depend on thread order.
inline void atomic_min(int64_t* slot, int64_t key) {
  int64_t seen = __atomic_load_n(slot, __ATOMIC_RELAXED);
  while (key < seen && !__atomic_compare_exchange_n(slot, &seen, key, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

template <bool kConcurrent>
void splat_point(const float* points, int64_t i, const RenderCamera& camera, const int64_t* grid, int64_t grid_h,
                 int64_t grid_w, int64_t radius, bool disc, int64_t* zbuf, int32_t* pixels, int64_t h, int64_t w) {
  int64_t row = -1, col = -1;
  float z;
  const bool drawn = render_point_centre(camera, points, grid, grid_h, grid_w, i, radius, h, w, &row, &col, &z);
  const bool inside = drawn && row >= 0 && row < h && col >= 0 && col < w;
  pixels[2 * i] = inside ? static_cast<int32_t>(row) : -1;
  pixels[2 * i + 1] = inside ? static_cast<int32_t>(col) : -1;
  if (!drawn) return;
  const int64_t key = render_depth_key(z, i);
  const int64_t r0 = row - radius < 0 ? 0 : row - radius, r1 = row + radius >= h ? h - 1 : row + radius;
  for (int64_t r = r0; r <= r1; ++r) {
    const int64_t half = render_splat_half_width(r - row, radius, disc);
    const int64_t c0 = col - half < 0 ? 0 : col - half, c1 = col + half >= w ? w - 1 : col + half;
    int64_t* line = zbuf + r * w;
    for (int64_t cc = c0; cc <= c1; ++cc) {
      if (kConcurrent) {
        atomic_min(line + cc, key);
      } else if (key < line[cc]) {
        line[cc] = key;
      }
    }
  }
}

}  // namespace

void render_cpu(const float* points, const float* normals, int64_t n, const RenderCamera& camera, const int64_t* grid,
                int64_t grid_h, int64_t grid_w, int64_t radius, bool disc, int64_t* zbuf, float* image,
                int32_t* pixels, int64_t h, int64_t w) {
  const int64_t size = h * w;
  const bool parallel_pixels = size >= kParallelPixels;
  const bool parallel_splat = n * (2 * radius + 1) * (2 * radius + 1) >= kParallelSplatWork;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (parallel_pixels)
#endif
  for (int64_t p = 0; p < size; ++p) zbuf[p] = kRenderEmptyKey;
  if (parallel_splat) {
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1024)
#endif
    for (int64_t i = 0; i < n; ++i)
      splat_point<true>(points, i, camera, grid, grid_h, grid_w, radius, disc, zbuf, pixels, h, w);
  } else {
    for (int64_t i = 0; i < n; ++i)
      splat_point<false>(points, i, camera, grid, grid_h, grid_w, radius, disc, zbuf, pixels, h, w);
  }
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (parallel_pixels)
#endif
  for (int64_t p = 0; p < size; ++p) {
    const int64_t key = zbuf[p];
    if (key == kRenderEmptyKey) {
      image[p] = kRenderBackground;
    } else {
      const int64_t i = key & 0xffffffffLL;
      image[p] = render_shade(camera, points + 3 * i, normals + 3 * i);
    }
  }
}

}  // namespace iaenet
