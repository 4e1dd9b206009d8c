#include <cstdint>

#include "common/cuda_check.cuh"
#include "retrieval/retrieval.h"
#include "retrieval/retrieval_math.h"

namespace iaenet {
namespace {

constexpr int kThreads = 128;
constexpr int64_t kNoRow = INT64_MAX;

// One block per selected patch marks its bank rows (all writers store 1, so the races are benign).
__global__ void mark_rows_kernel(const int64_t* __restrict__ indptr, const int64_t* __restrict__ rows,
                                 const int64_t* __restrict__ patches, uint8_t* __restrict__ mark) {
  const int64_t p = patches[blockIdx.x];
  for (int64_t e = indptr[p] + threadIdx.x; e < indptr[p + 1]; e += blockDim.x) mark[rows[e]] = 1;
}

// Squared norm of every marked bank row (the others are never read).
__global__ void row_norms_kernel(const float* __restrict__ bank, int64_t r, int64_t d,
                                 const uint8_t* __restrict__ mark, float* __restrict__ norms) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (row >= r || !mark[row]) return;
  const float* b[1] = {bank + row * d};
  retrieval_dots<1>(b[0], b, d, norms + row);
}

// One block per query: each thread keeps the k best of the marked rows it strides over, then thread 0 merges
// the per-thread lists (ascending, so a k-step merge of the list heads) into the output.
__global__ void knn_kernel(const float* __restrict__ bank, int64_t r, int64_t d, const uint8_t* __restrict__ mark,
                           const float* __restrict__ norms, const float* __restrict__ queries, int64_t k,
                           int64_t* __restrict__ idx, float* __restrict__ dist2) {
  extern __shared__ unsigned char smem[];
  float* all_d = reinterpret_cast<float*>(smem);
  int64_t* all_row = reinterpret_cast<int64_t*>(smem + sizeof(float) * kThreads * kRetrievalCudaMaxK);
  const int t = threadIdx.x;
  const float* a = queries + blockIdx.x * d;
  __shared__ float query_norm;
  if (t == 0) {
    const float* self[1] = {a};
    retrieval_dots<1>(a, self, d, &query_norm);
  }
  __syncthreads();
  float best_d[kRetrievalCudaMaxK];
  int64_t best_row[kRetrievalCudaMaxK];
  for (int64_t i = 0; i < k; ++i) {
    best_d[i] = INFINITY;
    best_row[i] = kNoRow;
  }
  for (int64_t row = t; row < r; row += kThreads) {
    if (!mark[row]) continue;
    const float* b[1] = {bank + row * d};
    float dot;
    retrieval_dots<1>(a, b, d, &dot);
    retrieval_topk_insert(best_d, best_row, k, retrieval_sq_dist(query_norm, norms[row], dot), row);
  }
  for (int64_t i = 0; i < k; ++i) {
    all_d[t * kRetrievalCudaMaxK + i] = best_d[i];
    all_row[t * kRetrievalCudaMaxK + i] = best_row[i];
  }
  __syncthreads();
  if (t != 0) return;
  int head[kThreads];
  for (int i = 0; i < kThreads; ++i) head[i] = 0;
  for (int64_t out = 0; out < k; ++out) {
    int winner = 0;
    for (int i = 1; i < kThreads; ++i) {
      if (retrieval_better(all_d[i * kRetrievalCudaMaxK + head[i]], all_row[i * kRetrievalCudaMaxK + head[i]],
                           all_d[winner * kRetrievalCudaMaxK + head[winner]],
                           all_row[winner * kRetrievalCudaMaxK + head[winner]]))
        winner = i;
    }
    const int64_t row = all_row[winner * kRetrievalCudaMaxK + head[winner]];
    idx[blockIdx.x * k + out] = row == kNoRow ? -1 : row;
    dist2[blockIdx.x * k + out] = all_d[winner * kRetrievalCudaMaxK + head[winner]];
    ++head[winner];
  }
}

}  // namespace

void retrieval_cuda(const float* bank, int64_t r, int64_t d, const int64_t* indptr, const int64_t* rows,
                    const int64_t* patches, int64_t q, const float* queries, int64_t c, int64_t k, int64_t* idx,
                    float* dist2, std::intptr_t stream_handle) {
  cudaStream_t stream = as_stream(stream_handle);
  uint8_t* mark = nullptr;
  float* norms = nullptr;
  cuda_check(cudaMallocAsync(&mark, r, stream), "retrieval: cudaMallocAsync");
  cuda_check(cudaMallocAsync(&norms, sizeof(float) * r, stream), "retrieval: cudaMallocAsync");
  cuda_check(cudaMemsetAsync(mark, 0, r, stream), "retrieval: cudaMemsetAsync");
  if (q > 0) {
    mark_rows_kernel<<<static_cast<unsigned int>(q), kThreads, 0, stream>>>(indptr, rows, patches, mark);
    cuda_check_launch("retrieval: mark kernel launch");
  }
  if (r > 0) {
    row_norms_kernel<<<blocks_for(r, kThreads), kThreads, 0, stream>>>(bank, r, d, mark, norms);
    cuda_check_launch("retrieval: norms kernel launch");
  }
  if (c > 0) {
    const size_t smem = (sizeof(float) + sizeof(int64_t)) * kThreads * kRetrievalCudaMaxK;
    knn_kernel<<<static_cast<unsigned int>(c), kThreads, smem, stream>>>(bank, r, d, mark, norms, queries, k, idx,
                                                                        dist2);
    cuda_check_launch("retrieval: knn kernel launch");
  }
  cuda_check(cudaFreeAsync(norms, stream), "retrieval: cudaFreeAsync");
  cuda_check(cudaFreeAsync(mark, stream), "retrieval: cudaFreeAsync");
}

}  // namespace iaenet
