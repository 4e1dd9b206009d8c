#include "common/parallel.h"
#include "omp/omp.h"
#include "omp/omp_math.h"

namespace iaenet {
namespace {

constexpr double kParallelOmpWork = 5.0e6;  // float64 multiply-adds, ~3 ms on one core

}  // namespace

void omp_residuals_cpu(const float* bank, int64_t d, const float* queries, int64_t c, const int64_t* idx, int64_t k,
                       int64_t n_atoms, float* residual, double* codes) {
  // ~(K^2 / 2 + K) D multiply-adds per query: a few microseconds, so tasks of 32 queries, and one thread below
  // ~3 ms of work in all.
  const double work = static_cast<double>(c) * static_cast<double>(k * (k + 3) / 2) * static_cast<double>(d);
  parallel_for(
      c,
      [&](int64_t i) {
        residual[i] = omp_residual(bank, d, queries + i * d, idx + i * k, k, n_atoms,
                                   codes == nullptr ? nullptr : codes + i * k);
      },
      32, work >= kParallelOmpWork);
}

}  // namespace iaenet
