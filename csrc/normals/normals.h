// Surface normals: kNN/radius PCA over given neighbour lists, and PCA over the window of an organized grid.
//
// Contract (knn)
//   points    : (N, 3) float32, C-contiguous, finite
//   nbr_idx   : (N, K) int64, row i = neighbours of point i in [0, N), nearest first, the point itself
//               included (as Open3D's searches return it); only the first count[i] entries are used
//   nbr_count : (N,) int64 in [0, K], or null for "all K"
//   camera    : 3 doubles (metres, same frame as the points), or null for unoriented normals
//   out       : (N, 3) float32 written in place
// Normal = unit eigenvector of the smallest eigenvalue of the neighbourhood covariance (double precision,
// normals_math.h), flipped so that n . (camera - p) >= 0. Fewer than 3 neighbours or coincident neighbours
// give (0, 0, 0). Memory: no scratch.
//
// Contract (grid)
//   grid  : (H, W, 3) float32, C-contiguous, finite, a pixel with xyz == (0, 0, 0) is missing
//   half  : window half-size >= 1 (window (2*half+1)^2, clipped at the borders)
//   out   : (H, W, 3) float32; (0, 0, 0) for missing pixels and undefined normals (grid_normal in normals_math.h)
#pragma once

#include <cstdint>

namespace iaenet {

void normals_knn_cpu(const float* points, int64_t n, const int64_t* nbr_idx, int64_t k, const int64_t* nbr_count,
                     const double* camera, float* out);
void normals_grid_cpu(const float* grid, int64_t h, int64_t w, int64_t half, const double* camera, float* out);
#ifdef IAENET_WITH_CUDA
void normals_knn_cuda(const float* points, int64_t n, const int64_t* nbr_idx, int64_t k, const int64_t* nbr_count,
                      const double* camera, float* out, std::intptr_t stream);
void normals_grid_cuda(const float* grid, int64_t h, int64_t w, int64_t half, const double* camera, float* out,
                       std::intptr_t stream);
#endif

}  // namespace iaenet
