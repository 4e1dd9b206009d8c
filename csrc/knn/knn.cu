// Exact kNN on the GPU by brute force: one block per query selects the k-th smallest key by radix selection
// over all N points (distances recomputed on every pass instead of stored: no M x N buffer), writes the k
// keys at or below it, and one segmented sort orders every row.
#include <algorithm>

#include <cub/device/device_segmented_sort.cuh>

#include "common/cuda_check.cuh"
#include "knn/knn.h"
#include "knn/knn_math.h"

namespace iaenet {
namespace {

constexpr int kThreads = 256;
constexpr int kBins = 1 << 11;
// A 32-bit word is selected in three passes, most significant digit first: bits 31..21, 20..10, 9..0.
constexpr int kPasses = 3;
__device__ __forceinline__ int digit_shift(int pass) { return pass == 0 ? 21 : (pass == 1 ? 10 : 0); }
__device__ __forceinline__ uint32_t digit_mask(int pass) { return pass == 2 ? 0x3ffu : 0x7ffu; }
// Grid x-dimension limit: queries beyond it go in further launches.
constexpr int64_t kMaxBlocks = (int64_t(1) << 31) - 1;

struct Selection {
  uint32_t value;  // the rank-th smallest word
  uint32_t rank;   // its rank among the elements whose word equals `value` (1-based)
  uint32_t count;  // how many elements have that word
};

struct SharedState {
  uint32_t hist[kBins];
  uint32_t value, rank, count, written;
};

// Block-wide radix selection: the rank-th smallest (1-based) of word(j) over the j in [0, n) with keep(j).
template <class Word, class Keep>
__device__ Selection radix_select(int64_t n, Word word, Keep keep, uint32_t rank, SharedState& s) {
  uint32_t value = 0, decided = 0;
  for (int p = 0; p < kPasses; ++p) {
    for (int b = threadIdx.x; b < kBins; b += blockDim.x) s.hist[b] = 0;
    __syncthreads();
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      if (!keep(j)) continue;
      const uint32_t w = word(j);
      if ((w & decided) == value) atomicAdd(&s.hist[(w >> digit_shift(p)) & digit_mask(p)], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      uint32_t below = 0, b = 0;
      while (below + s.hist[b] < rank) below += s.hist[b++];
      s.value = value | (b << digit_shift(p));
      s.rank = rank - below;
      s.count = s.hist[b];
    }
    __syncthreads();
    value = s.value;
    rank = s.rank;
    decided |= digit_mask(p) << digit_shift(p);
  }
  return {value, rank, s.count};
}

// Writes the k keys (knn_key) of query `first + blockIdx.x` that rank at or below its k-th, unordered.
__global__ void knn_select_kernel(const float* __restrict__ points, int64_t n, const float* __restrict__ queries,
                                  int64_t first, int64_t k, uint64_t* __restrict__ keys) {
  __shared__ SharedState s;
  const int64_t qi = first + blockIdx.x;
  const float q[3] = {queries[3 * qi], queries[3 * qi + 1], queries[3 * qi + 2]};
  auto dist_bits = [&](int64_t j) { return knn_dist_bits(knn_sq_dist(points + 3 * j, q)); };
  const Selection d = radix_select(n, dist_bits, [](int64_t) { return true; }, static_cast<uint32_t>(k), s);
  // Ties at the k-th distance: take the lowest indices among them, found by a second selection on the index.
  uint32_t last_index = 0xffffffffu;
  if (d.count > d.rank) {
    auto index = [](int64_t j) { return static_cast<uint32_t>(j); };
    auto at_kth = [&](int64_t j) { return dist_bits(j) == d.value; };
    last_index = radix_select(n, index, at_kth, d.rank, s).value;
  }
  const uint64_t last = (static_cast<uint64_t>(d.value) << 32) | last_index;
  if (threadIdx.x == 0) s.written = 0;
  __syncthreads();
  uint64_t* out = keys + qi * k;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const uint64_t key = knn_key(knn_sq_dist(points + 3 * j, q), j);
    if (key <= last) out[atomicAdd(&s.written, 1u)] = key;
  }
}

__global__ void row_offsets_kernel(int64_t* offsets, int64_t rows, int64_t k) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i <= rows) offsets[i] = i * k;
}

__global__ void unpack_kernel(const uint64_t* __restrict__ keys, int64_t total, int64_t* __restrict__ idx,
                              float* __restrict__ dist2) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < total) {
    idx[i] = static_cast<int64_t>(keys[i] & 0xffffffffu);
    dist2[i] = knn_bits_dist(static_cast<uint32_t>(keys[i] >> 32));
  }
}

}  // namespace

void knn_cuda(const float* points, int64_t n, const float* queries, int64_t m, int64_t k, int64_t* idx, float* dist2,
              std::intptr_t stream_handle) {
  if (m == 0) return;
  cudaStream_t stream = as_stream(stream_handle);
  const int64_t total = m * k;
  // The int64 output doubles as the buffer of unsorted keys (both 8 bytes per entry).
  uint64_t* keys = reinterpret_cast<uint64_t*>(idx);
  for (int64_t first = 0; first < m; first += kMaxBlocks) {
    const unsigned int blocks = static_cast<unsigned int>(std::min(kMaxBlocks, m - first));
    knn_select_kernel<<<blocks, kThreads, 0, stream>>>(points, n, queries, first, k, keys);
    cuda_check_launch("knn: select kernel launch");
  }

  int64_t* offsets = nullptr;
  uint64_t* sorted = nullptr;
  void* temp = nullptr;
  size_t temp_bytes = 0;
  cuda_check(cudaMallocAsync(&offsets, sizeof(int64_t) * (m + 1), stream), "knn: cudaMallocAsync");
  cuda_check(cudaMallocAsync(&sorted, sizeof(uint64_t) * total, stream), "knn: cudaMallocAsync");
  row_offsets_kernel<<<blocks_for(m + 1, kThreads), kThreads, 0, stream>>>(offsets, m, k);
  cuda_check_launch("knn: offsets kernel launch");
  cuda_check(cub::DeviceSegmentedSort::SortKeys(nullptr, temp_bytes, keys, sorted, total, m, offsets, offsets + 1,
                                                stream),
             "knn: segmented sort (size query)");
  cuda_check(cudaMallocAsync(&temp, std::max<size_t>(temp_bytes, 1), stream), "knn: cudaMallocAsync");
  cuda_check(cub::DeviceSegmentedSort::SortKeys(temp, temp_bytes, keys, sorted, total, m, offsets, offsets + 1, stream),
             "knn: segmented sort");
  unpack_kernel<<<blocks_for(total, kThreads), kThreads, 0, stream>>>(sorted, total, idx, dist2);
  cuda_check_launch("knn: unpack kernel launch");
  cuda_check(cudaFreeAsync(temp, stream), "knn: cudaFreeAsync");
  cuda_check(cudaFreeAsync(sorted, stream), "knn: cudaFreeAsync");
  cuda_check(cudaFreeAsync(offsets, stream), "knn: cudaFreeAsync");
}

}  // namespace iaenet
