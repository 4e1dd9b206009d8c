// Fast Point Feature Histograms with Open3D's semantics (open3d.pipelines.registration.compute_fpfh_feature).
//
// Contract
//   points    : (N, 3) float32, C-contiguous, finite
//   normals   : (N, 3) float32, C-contiguous, finite (unit, or zero where undefined)
//   nbr_idx   : (N, K) int64, row i = neighbours of point i in [0, N), nearest first, nbr_idx[i][0] == i
//               (Open3D skips the first search result as the point itself)
//   nbr_count : (N,) int64 in [0, K] (only the first count[i] entries are used), or null for "all K"
//   out       : (N, 33) float32 written in place: bins 0-10 f0 (angle), 11-21 f1, 22-32 f2 (fpfh_math.h)
// Two passes over the same neighbour lists: SPFH of every point, then FPFH. Pair features, weights and sums
// are in double. Memory: an (N, 33) double SPFH table (264 bytes per point), nothing O(N^2).
#pragma once

#include <cstdint>

namespace iaenet {

void fpfh_cpu(const float* points, const float* normals, int64_t n, const int64_t* nbr_idx, int64_t k,
              const int64_t* nbr_count, float* out);
#ifdef IAENET_WITH_CUDA
void fpfh_cuda(const float* points, const float* normals, int64_t n, const int64_t* nbr_idx, int64_t k,
               const int64_t* nbr_count, float* out, std::intptr_t stream);
#endif

}  // namespace iaenet
