#include "common/cuda_check.cuh"
#include "fps/fps.h"
#include "fps/fps_math.h"

namespace iaenet {
namespace {

constexpr int kThreads = 1024;

// One block walks all S iterations; each iteration is a block-wide argmax over the running minimum distances.
__global__ void fps_kernel(const float* __restrict__ points, int64_t n, int64_t start, int64_t* __restrict__ out,
                           int64_t s, float* __restrict__ min_dist) {
  __shared__ float best_d[kThreads];
  __shared__ int64_t best_i[kThreads];
  __shared__ int64_t current;
  const int t = threadIdx.x;
  for (int64_t j = t; j < n; j += kThreads) min_dist[j] = INFINITY;
  if (t == 0) {
    current = start;
    out[0] = start;
  }
  __syncthreads();
  for (int64_t k = 1; k < s; ++k) {
    const float* c = points + 3 * current;
    float d_best = -1.0f;
    int64_t i_best = n;
    for (int64_t j = t; j < n; j += kThreads) {
      const float d = fminf(min_dist[j], fps_sq_dist(points + 3 * j, c));
      min_dist[j] = d;
      if (fps_better(d, j, d_best, i_best)) {
        d_best = d;
        i_best = j;
      }
    }
    best_d[t] = d_best;
    best_i[t] = i_best;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
      if (t < stride && fps_better(best_d[t + stride], best_i[t + stride], best_d[t], best_i[t])) {
        best_d[t] = best_d[t + stride];
        best_i[t] = best_i[t + stride];
      }
      __syncthreads();
    }
    if (t == 0) {
      current = best_i[0];
      out[k] = current;
    }
    __syncthreads();
  }
}

}  // namespace

void fps_cuda(const float* points, int64_t n, int64_t start, int64_t* out, int64_t s, std::intptr_t stream_handle) {
  cudaStream_t stream = as_stream(stream_handle);
  float* min_dist = nullptr;
  cuda_check(cudaMallocAsync(&min_dist, sizeof(float) * n, stream), "fps: cudaMallocAsync");
  fps_kernel<<<1, kThreads, 0, stream>>>(points, n, start, out, s, min_dist);
  cuda_check_launch("fps: kernel launch");
  cuda_check(cudaFreeAsync(min_dist, stream), "fps: cudaFreeAsync");
}

}  // namespace iaenet
