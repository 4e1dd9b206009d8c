#include <vector>

#include "common/parallel.h"
#include "fpfh/fpfh.h"
#include "fpfh/fpfh_math.h"

namespace iaenet {

void fpfh_cpu(const float* points, const float* normals, int64_t n, const int64_t* nbr_idx, int64_t k,
              const int64_t* nbr_count, float* out) {
  std::vector<double> spfh(static_cast<size_t>(n) * kFpfhDims);
  double* table = spfh.data();
  parallel_for(n, [=](int64_t i) {
    spfh_point(points, normals, i, nbr_idx + i * k, nbr_count ? nbr_count[i] : k, table + kFpfhDims * i);
  });
  parallel_for(n, [=](int64_t i) {
    fpfh_point(points, i, nbr_idx + i * k, nbr_count ? nbr_count[i] : k, table, out + kFpfhDims * i);
  });
}

}  // namespace iaenet
