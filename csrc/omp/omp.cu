#include "common/cuda_check.cuh"
#include "omp/omp.h"
#include "omp/omp_math.h"

namespace iaenet {
namespace {

constexpr int kThreads = 128;

// One thread per query: K <= 16 atoms, the factor and the Gram matrix live in the thread's local memory.
__global__ void omp_kernel(const float* __restrict__ bank, int64_t d, const float* __restrict__ queries, int64_t c,
                           const int64_t* __restrict__ idx, int64_t k, int64_t n_atoms, float* __restrict__ residual,
                           double* __restrict__ codes) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= c) return;
  residual[i] = omp_residual(bank, d, queries + i * d, idx + i * k, k, n_atoms,
                             codes == nullptr ? nullptr : codes + i * k);
}

}  // namespace

void omp_residuals_cuda(const float* bank, int64_t d, const float* queries, int64_t c, const int64_t* idx,
                        int64_t k, int64_t n_atoms, float* residual, double* codes, std::intptr_t stream) {
  if (c == 0) return;
  omp_kernel<<<blocks_for(c, kThreads), kThreads, 0, as_stream(stream)>>>(bank, d, queries, c, idx, k, n_atoms,
                                                                         residual, codes);
  cuda_check_launch("omp_residuals: kernel launch");
}

}  // namespace iaenet
