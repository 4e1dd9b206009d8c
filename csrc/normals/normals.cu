#include "common/cuda_check.cuh"
#include "normals/normals.h"
#include "normals/normals_math.h"

namespace iaenet {
namespace {

constexpr int kThreads = 128;

// The camera travels by value so the kernels need no device copy of it.
struct Camera {
  double xyz[3];
  bool present;
  __device__ const double* get() const { return present ? xyz : nullptr; }
};

Camera camera_arg(const double* camera) {
  Camera c{{0.0, 0.0, 0.0}, camera != nullptr};
  if (camera)
    for (int i = 0; i < 3; ++i) c.xyz[i] = camera[i];
  return c;
}

// One thread per point.
__global__ void normals_knn_kernel(const float* __restrict__ points, int64_t n, const int64_t* __restrict__ nbr_idx,
                                   int64_t k, const int64_t* __restrict__ nbr_count, Camera camera,
                                   float* __restrict__ out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  knn_normal(points, i, nbr_idx + i * k, nbr_count ? nbr_count[i] : k, camera.get(), out + 3 * i);
}

// One thread per pixel.
__global__ void normals_grid_kernel(const float* __restrict__ grid, int64_t h, int64_t w, int64_t half,
                                    Camera camera, float* __restrict__ out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= h * w) return;
  grid_normal(grid, h, w, i / w, i % w, half, camera.get(), out + 3 * i);
}

}  // namespace

void normals_knn_cuda(const float* points, int64_t n, const int64_t* nbr_idx, int64_t k, const int64_t* nbr_count,
                      const double* camera, float* out, std::intptr_t stream) {
  normals_knn_kernel<<<blocks_for(n, kThreads), kThreads, 0, as_stream(stream)>>>(points, n, nbr_idx, k, nbr_count,
                                                                                  camera_arg(camera), out);
  cuda_check_launch("normals_knn: kernel launch");
}

void normals_grid_cuda(const float* grid, int64_t h, int64_t w, int64_t half, const double* camera, float* out,
                       std::intptr_t stream) {
  normals_grid_kernel<<<blocks_for(h * w, kThreads), kThreads, 0, as_stream(stream)>>>(grid, h, w, half,
                                                                                       camera_arg(camera), out);
  cuda_check_launch("normals_grid: kernel launch");
}

}  // namespace iaenet
