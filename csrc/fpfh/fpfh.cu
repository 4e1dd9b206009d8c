#include "common/cuda_check.cuh"
#include "fpfh/fpfh.h"
#include "fpfh/fpfh_math.h"

namespace iaenet {
namespace {

constexpr int kThreads = 128;

// One thread per point for both passes; the SPFH table lives in device scratch between them.
__global__ void spfh_kernel(const float* __restrict__ points, const float* __restrict__ normals, int64_t n,
                            const int64_t* __restrict__ nbr_idx, int64_t k, const int64_t* __restrict__ nbr_count,
                            double* __restrict__ spfh) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  spfh_point(points, normals, i, nbr_idx + i * k, nbr_count ? nbr_count[i] : k, spfh + kFpfhDims * i);
}

__global__ void fpfh_kernel(const float* __restrict__ points, int64_t n, const int64_t* __restrict__ nbr_idx,
                            int64_t k, const int64_t* __restrict__ nbr_count, const double* __restrict__ spfh,
                            float* __restrict__ out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  fpfh_point(points, i, nbr_idx + i * k, nbr_count ? nbr_count[i] : k, spfh, out + kFpfhDims * i);
}

}  // namespace

void fpfh_cuda(const float* points, const float* normals, int64_t n, const int64_t* nbr_idx, int64_t k,
               const int64_t* nbr_count, float* out, std::intptr_t stream_handle) {
  cudaStream_t stream = as_stream(stream_handle);
  double* spfh = nullptr;
  cuda_check(cudaMallocAsync(&spfh, sizeof(double) * kFpfhDims * n, stream), "fpfh: cudaMallocAsync");
  spfh_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(points, normals, n, nbr_idx, k, nbr_count, spfh);
  cuda_check_launch("fpfh: SPFH kernel launch");
  fpfh_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(points, n, nbr_idx, k, nbr_count, spfh, out);
  cuda_check_launch("fpfh: FPFH kernel launch");
  cuda_check(cudaFreeAsync(spfh, stream), "fpfh: cudaFreeAsync");
}

}  // namespace iaenet
