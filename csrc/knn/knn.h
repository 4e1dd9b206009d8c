// Exact k nearest neighbours.
//
// Contract
//   points  : (N, 3) float32, C-contiguous, finite (the reference set)
//   queries : (M, 3) float32, C-contiguous, finite (may alias `points`)
//   k       : 1 <= k <= N
//   idx     : (M, k) int64 written in place: indices into `points`
//   dist2   : (M, k) float32 written in place: squared Euclidean distances
// Row i holds the k points nearest to queries[i], sorted by distance ascending; equal distances go to the
// lower point index. Distances are evaluated in float32 in the fixed order of knn_sq_dist (knn_math.h), the
// same expression on both paths and in the numpy reference, so results are identical, not just close.
//
// Memory
//   CPU : a uniform grid over the bounding box of `points`, stored as the points sorted by cell plus the
//         occupied cells grouped into hashed rows: O(N) (20 bytes per point plus a few per occupied cell, and
//         16 more per point while building), never a dense 3-D array; a 2k-key buffer per thread; for self
//         queries the candidates of one block of cells per thread (knn_block.h, 36 bytes per candidate);
//         16 bytes per query to order separate queries by cell. No N x N or M x N buffer.
//   CUDA: exact brute force by radix selection, one block per query: O(M k) scratch (8 bytes per entry for
//         the final sort) plus the segmented sort's temporary storage. No M x N buffer.
#pragma once

#include <cstdint>

namespace iaenet {

void knn_cpu(const float* points, int64_t n, const float* queries, int64_t m, int64_t k, int64_t* idx, float* dist2);
#ifdef IAENET_WITH_CUDA
void knn_cuda(const float* points, int64_t n, const float* queries, int64_t m, int64_t k, int64_t* idx, float* dist2,
              std::intptr_t stream);
#endif

}  // namespace iaenet
