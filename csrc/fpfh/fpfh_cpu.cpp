// FPFH on the CPU. The SPFH pass evaluates the pair features of a point with a batch of its neighbours at a
// time: the neighbours' coordinates and normals are copied into per-lane arrays, so that the branch-free
// fpfh_pair_features vectorises across neighbours (AVX2 where the CPU has it, chosen at run time; no FMA,
// which would change rounding), then the bins are counted in a scalar loop that also takes the rare exact
// atan2 fallback. Each lane performs the same IEEE operations as the scalar code, so results are identical.
// Assume floating-point operations do not trap (they never do with the default masked exceptions): only then
// does GCC evaluate the guarded divisions of fpfh_pair_features in every lane and select, i.e. vectorise.
// Values and rounding are unaffected.
#pragma GCC optimize("no-trapping-math")

#include <vector>

#include "common/cpu_isa.h"
#include "common/parallel.h"
#include "fpfh/fpfh.h"
#include "fpfh/fpfh_math.h"

namespace iaenet {
namespace {

constexpr int kBatch = 32;  // neighbours per batch: several SIMD vectors, small enough for the L1 cache

// One batch of neighbours in lanes (structure of arrays) and their features.
struct PairBatch {
  double p[3][kBatch], n[3][kBatch];     // the neighbours' points and normals
  double f[4][kBatch], s[kBatch];        // fpfh_pair_features and fpfh_angle_coordinate per lane
};

#define IAENET_SPFH_FEATURES_BODY                                                   \
  for (int l = 0; l < lanes; ++l) {                                                 \
    const double p2[3] = {b->p[0][l], b->p[1][l], b->p[2][l]};                      \
    const double n2[3] = {b->n[0][l], b->n[1][l], b->n[2][l]};                      \
    double f[4];                                                                    \
    fpfh_pair_features(p1, n1, p2, n2, f);                                          \
    for (int c = 0; c < 4; ++c) b->f[c][l] = f[c];                                  \
    b->s[l] = fpfh_angle_coordinate(f[0], f[1]);                                    \
  }

__attribute__((target("avx2"))) void features_avx2(const double* p1, const double* n1, PairBatch* b, int lanes) {
  IAENET_SPFH_FEATURES_BODY
}

void features_portable(const double* p1, const double* n1, PairBatch* b, int lanes) { IAENET_SPFH_FEATURES_BODY }
#undef IAENET_SPFH_FEATURES_BODY

using FeaturesFn = void (*)(const double*, const double*, PairBatch*, int);

// SPFH of point i (spfh_point's result, computed a batch of neighbours at a time).
void spfh_point_batched(FeaturesFn features, const float* points, const float* normals, int64_t i,
                        const int64_t* nbr, int64_t count, double* spfh) {
  int hist[kFpfhDims] = {};
  double p1[3], n1[3];
  load3(points + 3 * i, p1);
  load3(normals + 3 * i, n1);
  PairBatch batch;
  for (int64_t first = 1; first < count; first += kBatch) {
    const int lanes = static_cast<int>(count - first < kBatch ? count - first : kBatch);
    for (int l = 0; l < lanes; ++l) {
      const int64_t j = nbr[first + l];
      for (int c = 0; c < 3; ++c) batch.p[c][l] = points[3 * j + c], batch.n[c][l] = normals[3 * j + c];
    }
    features(p1, n1, &batch, lanes);
    for (int l = 0; l < lanes; ++l) {
      const double f[4] = {batch.f[0][l], batch.f[1][l], batch.f[2][l], batch.f[3][l]};
      int bins[3];
      fpfh_feature_bins(f, batch.s[l], bins);
      fpfh_count_bins(bins, hist);
    }
  }
  spfh_from_counts(hist, count - 1, spfh);
}

}  // namespace

void fpfh_cpu(const float* points, const float* normals, int64_t n, const int64_t* nbr_idx, int64_t k,
              const int64_t* nbr_count, float* out) {
  std::vector<double> spfh(static_cast<size_t>(n) * kFpfhDims);
  double* table = spfh.data();
  const FeaturesFn features = cpu_has(CpuIsa::Avx2) ? features_avx2 : features_portable;
  parallel_for(n, [=](int64_t i) {
    spfh_point_batched(features, points, normals, i, nbr_idx + i * k, nbr_count ? nbr_count[i] : k,
                       table + kFpfhDims * i);
  });
  parallel_for(n, [=](int64_t i) {
    fpfh_point(points, i, nbr_idx + i * k, nbr_count ? nbr_count[i] : k, table, out + kFpfhDims * i);
  });
}

}  // namespace iaenet
