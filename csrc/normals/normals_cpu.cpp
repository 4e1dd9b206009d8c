#include "common/parallel.h"
#include "normals/normals.h"
#include "normals/normals_math.h"

namespace iaenet {

void normals_knn_cpu(const float* points, int64_t n, const int64_t* nbr_idx, int64_t k, const int64_t* nbr_count,
                     const double* camera, float* out) {
  parallel_for(n, [=](int64_t i) {
    knn_normal(points, i, nbr_idx + i * k, nbr_count ? nbr_count[i] : k, camera, out + 3 * i);
  });
}

void normals_grid_cpu(const float* grid, int64_t h, int64_t w, int64_t half, const double* camera, float* out) {
  parallel_for(h * w, [=](int64_t i) { grid_normal(grid, h, w, i / w, i % w, half, camera, out + 3 * i); });
}

}  // namespace iaenet
