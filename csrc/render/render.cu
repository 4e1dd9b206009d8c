#include "common/cuda_check.cuh"
#include "render/render.h"

namespace iaenet {
namespace {

constexpr int kThreads = 256;

__global__ void clear_kernel(int64_t* zbuf, int64_t size) {
  const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (p < size) zbuf[p] = kRenderEmptyKey;
}

// Keys are non-negative, so the unsigned 64-bit minimum equals the signed one.
struct AtomicMinKey {
  __device__ void operator()(int64_t* slot, int64_t key) const {
    atomicMin(reinterpret_cast<unsigned long long*>(slot), static_cast<unsigned long long>(key));
  }
};

// One thread per point: its centre pixel, then a 64-bit atomicMin of its key into every covered pixel.
__global__ void splat_kernel(const float* __restrict__ points, int64_t n, RenderCamera camera,
                             const int64_t* __restrict__ grid, int64_t grid_h, int64_t grid_w, int64_t radius,
                             bool disc, int64_t* zbuf, int32_t* __restrict__ pixels, int64_t h, int64_t w) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) render_splat_point(camera, points, grid, grid_h, grid_w, i, radius, disc, zbuf, pixels, h, w, AtomicMinKey());
}

__global__ void shade_kernel(const float* __restrict__ points, const float* __restrict__ normals, RenderCamera camera,
                             const int64_t* __restrict__ zbuf, float* __restrict__ image, int64_t size) {
  const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (p >= size) return;
  image[p] = render_pixel(camera, points, normals, zbuf[p]);
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
