#include "common/cuda_check.cuh"
#include "render/render.h"

namespace iaenet {
namespace {

constexpr int kThreads = 256;

__global__ void clear_kernel(int64_t* zbuf, int64_t size) {
  const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (p < size) zbuf[p] = kRenderEmptyKey;
}

// One thread per point: its centre pixel, then a 64-bit atomicMin of its key into every covered pixel.
__global__ void splat_kernel(const float* __restrict__ points, int64_t n, RenderCamera camera,
                             const int64_t* __restrict__ grid, int64_t grid_h, int64_t grid_w, int64_t radius,
                             bool disc, int64_t* zbuf, int32_t* __restrict__ pixels, int64_t h, int64_t w) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  int64_t row = -1, col = -1;
  float z;
  const bool drawn = render_point_centre(camera, points, grid, grid_h, grid_w, i, radius, h, w, &row, &col, &z);
  const bool inside = drawn && row >= 0 && row < h && col >= 0 && col < w;
  pixels[2 * i] = inside ? static_cast<int32_t>(row) : -1;
  pixels[2 * i + 1] = inside ? static_cast<int32_t>(col) : -1;
  if (!drawn) return;
  // Keys are non-negative, so the unsigned minimum equals the signed one.
  const unsigned long long key = static_cast<unsigned long long>(render_depth_key(z, i));
  const int64_t r0 = row - radius < 0 ? 0 : row - radius, r1 = row + radius >= h ? h - 1 : row + radius;
  for (int64_t r = r0; r <= r1; ++r) {
    const int64_t half = render_splat_half_width(r - row, radius, disc);
    const int64_t c0 = col - half < 0 ? 0 : col - half, c1 = col + half >= w ? w - 1 : col + half;
    for (int64_t cc = c0; cc <= c1; ++cc) atomicMin(reinterpret_cast<unsigned long long*>(zbuf + r * w + cc), key);
  }
}

__global__ void shade_kernel(const float* __restrict__ points, const float* __restrict__ normals, RenderCamera camera,
                             const int64_t* __restrict__ zbuf, float* __restrict__ image, int64_t size) {
  const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (p >= size) return;
  const int64_t key = zbuf[p];
  if (key == kRenderEmptyKey) {
    image[p] = kRenderBackground;
  } else {
    const int64_t i = key & 0xffffffffLL;
    image[p] = render_shade(camera, points + 3 * i, normals + 3 * i);
  }
}

}  // namespace

void render_cuda(const float* points, const float* normals, int64_t n, const RenderCamera& camera,
                 const int64_t* grid, int64_t grid_h, int64_t grid_w, int64_t radius, bool disc, int64_t* zbuf,
                 float* image, int32_t* pixels, int64_t h, int64_t w, std::intptr_t stream_handle) {
  cudaStream_t stream = as_stream(stream_handle);
  clear_kernel<<<blocks_for(h * w, kThreads), kThreads, 0, stream>>>(zbuf, h * w);
  cuda_check_launch("render: clear launch");
  if (n > 0) {
    splat_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(points, n, camera, grid, grid_h, grid_w, radius,
                                                                   disc, zbuf, pixels, h, w);
    cuda_check_launch("render: splat launch");
  }
  shade_kernel<<<blocks_for(h * w, kThreads), kThreads, 0, stream>>>(points, normals, camera, zbuf, image, h * w);
  cuda_check_launch("render: shade launch");
}

}  // namespace iaenet
