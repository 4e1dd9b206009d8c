#include "render/render.h"

#include "common/parallel.h"

namespace iaenet {
namespace {

// Lock-free minimum: the z-buffer keys are unique per point, so the final value does not depend on thread order.
void atomic_min(int64_t* slot, int64_t key) {
  int64_t seen = __atomic_load_n(slot, __ATOMIC_RELAXED);
  while (key < seen && !__atomic_compare_exchange_n(slot, &seen, key, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

}  // namespace

void render_cpu(const float* points, const float* normals, int64_t n, const RenderCamera& camera, const int64_t* grid,
                int64_t grid_h, int64_t grid_w, int64_t radius, bool disc, int64_t* zbuf, float* image,
                int32_t* pixels, int64_t h, int64_t w) {
  parallel_for(h * w, [&](int64_t p) { zbuf[p] = kRenderEmptyKey; }, 4096);
  parallel_for(n, [&](int64_t i) {
    int64_t row = -1, col = -1;
    float z;
    const bool drawn = render_point_centre(camera, points, grid, grid_h, grid_w, i, radius, h, w, &row, &col, &z);
    const bool inside = drawn && row >= 0 && row < h && col >= 0 && col < w;
    pixels[2 * i] = inside ? static_cast<int32_t>(row) : -1;
    pixels[2 * i + 1] = inside ? static_cast<int32_t>(col) : -1;
    if (!drawn) return;
    const int64_t key = render_depth_key(z, i);
    for (int64_t dr = -radius; dr <= radius; ++dr) {
      const int64_t r = row + dr;
      if (r < 0 || r >= h) continue;
      for (int64_t dc = -radius; dc <= radius; ++dc) {
        const int64_t cc = col + dc;
        if (cc < 0 || cc >= w || !render_splat_covers(dr, dc, radius, disc)) continue;
        atomic_min(zbuf + r * w + cc, key);
      }
    }
  }, 1024);
  parallel_for(h * w, [&](int64_t p) {
    const int64_t key = zbuf[p];
    if (key == kRenderEmptyKey) {
      image[p] = kRenderBackground;
    } else {
      const int64_t i = key & 0xffffffffLL;
      image[p] = render_shade(camera, points + 3 * i, normals + 3 * i);
    }
  }, 4096);
}

}  // namespace iaenet
