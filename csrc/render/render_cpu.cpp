#include "render/render.h"

namespace iaenet {
namespace {

// Below this many pixel updates (points x splat area) a view takes about a millisecond on one core, and waking an
// OpenMP team costs more than it saves (much more when other processes hold the cores), so the loop runs serially.
constexpr int64_t kParallelSplatWork = int64_t{1} << 22;
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

struct PlainMinKey {
  void operator()(int64_t* slot, int64_t key) const {
    if (key < *slot) *slot = key;
  }
};

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
      render_splat_point(camera, points, grid, grid_h, grid_w, i, radius, disc, zbuf, pixels, h, w, AtomicMinKey());
  } else {
    for (int64_t i = 0; i < n; ++i)
      render_splat_point(camera, points, grid, grid_h, grid_w, i, radius, disc, zbuf, pixels, h, w, PlainMinKey());
  }
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (parallel_pixels)
#endif
  for (int64_t p = 0; p < size; ++p) image[p] = render_pixel(camera, points, normals, zbuf[p]);
}

}  // namespace iaenet
