#include <algorithm>
#include <cstdint>

#include "common/cuda_check.cuh"
#include "iaf/iaf.h"
#include "iaf/iaf_math.h"

namespace iaenet {
namespace {

constexpr int kThreads = 128;

// Floats of one network's weights and biases.
__host__ __device__ int64_t mlp_floats(const IafMlp& mlp) {
  int64_t floats = 0;
  for (int l = 0; l < mlp.layers; ++l) floats += static_cast<int64_t>(mlp.width[l] + 1) * mlp.width[l + 1];
  return floats;
}

// Copies the network's layers (weight, then bias, layer after layer) to `to` with the block's threads and points
// `mlp` at the copies; returns the float after the last one.
__device__ float* stage_mlp(IafMlp& mlp, float* to) {
  for (int l = 0; l < mlp.layers; ++l) {
    const int64_t w = static_cast<int64_t>(mlp.width[l]) * mlp.width[l + 1];
    for (int64_t j = threadIdx.x; j < w; j += blockDim.x) to[j] = mlp.weight[l][j];
    for (int64_t j = threadIdx.x; j < mlp.width[l + 1]; j += blockDim.x) to[w + j] = mlp.bias[l][j];
    mlp.weight[l] = to;
    mlp.bias[l] = to + w;
    to += w + mlp.width[l + 1];
  }
  return to;
}

// One thread per point (grid-stride). With `staged`, the block first copies both networks into shared memory
// (every thread of a warp reads the same weight at the same step: a broadcast, no bank conflicts); otherwise the
// weights are read from global memory through the cache.
__global__ void iaf_kernel(IafNet net, bool staged, const float* __restrict__ scores, int64_t n, float* __restrict__ a,
                           float* __restrict__ s) {
  extern __shared__ float staged_weights[];
  if (staged) {
    stage_mlp(net.predictor, stage_mlp(net.selector, staged_weights));
    __syncthreads();
  }
  float scratch[2 * kIafMaxWidth];
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    iaf_point(net, scores + kIafInputs * i, a + i, s == nullptr ? nullptr : s + kIafInputs * i, scratch);
}

}  // namespace

void iaf_forward_cuda(const IafNet& net, const float* scores, int64_t n, float* a, float* s, std::intptr_t stream) {
  if (n == 0) return;
  int device = 0, optin = 0, sms = 0;
  cuda_check(cudaGetDevice(&device), "iaf_forward: cudaGetDevice");
  cuda_check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
             "iaf_forward: shared memory per block");
  cuda_check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "iaf_forward: multiprocessors");
  // The paper's networks (width 64) take 69 KiB: above the default 48 KiB, within the opt-in limit of sm_80/sm_90.
  const size_t bytes = sizeof(float) * static_cast<size_t>(mlp_floats(net.selector) + mlp_floats(net.predictor));
  const bool staged = bytes <= static_cast<size_t>(optin);
  const size_t shared = staged ? bytes : 0;
  cuda_check(cudaFuncSetAttribute(iaf_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)),
             "iaf_forward: dynamic shared memory");
  int per_sm = 0;
  cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, iaf_kernel, kThreads, shared),
             "iaf_forward: occupancy");
  // As many blocks as run at once: each stages the weights once and strides over the points.
  const unsigned blocks = std::min<unsigned>(blocks_for(n, kThreads), static_cast<unsigned>(std::max(1, per_sm) * sms));
  iaf_kernel<<<blocks, kThreads, shared, as_stream(stream)>>>(net, staged, scores, n, a, s);
  cuda_check_launch("iaf_forward: kernel launch");
}

}  // namespace iaenet
