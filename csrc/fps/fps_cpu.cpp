#include <limits>
#include <vector>

#include "fps/fps.h"
#include "fps/fps_math.h"

namespace iaenet {

// One parallel region for the whole walk: opening a region per sample costs more than the scan itself for
// small clouds, and far more on a busy machine. Threads scan their static share of the points, merge their
// local argmax, and one thread publishes the next sample between two barriers.
void fps_cpu(const float* points, int64_t n, int64_t start, int64_t* out, int64_t s) {
  std::vector<float> min_dist(n, std::numeric_limits<float>::infinity());
  int64_t current = start;
  float best_d = -1.0f;
  int64_t best_i = n;
  out[0] = current;
#ifdef _OPENMP
#pragma omp parallel if (n >= 4096)
#endif
  for (int64_t k = 1; k < s; ++k) {
    const float* c = points + 3 * current;
    float local_d = -1.0f;
    int64_t local_i = n;
#ifdef _OPENMP
#pragma omp for schedule(static) nowait
#endif
    for (int64_t j = 0; j < n; ++j) {
      const float d = fps_sq_dist(points + 3 * j, c);
      if (d < min_dist[j]) min_dist[j] = d;
      if (fps_better(min_dist[j], j, local_d, local_i)) {
        local_d = min_dist[j];
        local_i = j;
      }
    }
#ifdef _OPENMP
#pragma omp critical
#endif
    if (fps_better(local_d, local_i, best_d, best_i)) {
      best_d = local_d;
      best_i = local_i;
    }
#ifdef _OPENMP
#pragma omp barrier
#pragma omp single
#endif
    {
      current = best_i;
      out[k] = current;
      best_d = -1.0f;
      best_i = n;
    }  // the implicit barrier of `single` publishes `current` before the next scan
  }
}

}  // namespace iaenet
