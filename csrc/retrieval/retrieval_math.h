// Per-element arithmetic of the restricted retrieval, shared by the CPU and CUDA paths.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/hostdevice.h"

namespace iaenet {

// Dot products accumulate in kRetrievalLanes partial sums: lane l is s_l <- fma(a[j], b[j], s_l) over
// j = l (mod 8) in increasing j (fused multiply-add, one rounding), then the lanes are added as
// ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)). The order is fixed, so every path gives the same bits:
// the CUDA path runs these functions, the CPU path runs them for its tails and an AVX2/FMA version of the same
// operations (one 8-wide register per row) for the bulk.
constexpr int kRetrievalLanes = 8;

IAENET_HD float retrieval_reduce_lanes(const float* s) {
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// Dot products of `a` (d floats) with NB rows b[0..NB) at once; out[i] equals what NB = 1 gives for b[i].
template <int NB>
IAENET_HD void retrieval_dots(const float* a, const float* const* b, int64_t d, float* out) {
  float s[NB][kRetrievalLanes];
  for (int i = 0; i < NB; ++i)
    for (int l = 0; l < kRetrievalLanes; ++l) s[i][l] = 0.0f;
  // Constant lane indices only (unrolled loops, a guarded tail), so CUDA keeps the lanes in registers.
  int64_t j = 0;
  for (; j + kRetrievalLanes <= d; j += kRetrievalLanes) {
    for (int i = 0; i < NB; ++i) {
#ifdef __CUDACC__
#pragma unroll
#endif
      for (int l = 0; l < kRetrievalLanes; ++l) s[i][l] = fmaf(a[j + l], b[i][j + l], s[i][l]);
    }
  }
  for (int i = 0; i < NB; ++i) {
#ifdef __CUDACC__
#pragma unroll
#endif
    for (int l = 0; l < kRetrievalLanes; ++l)
      if (j + l < d) s[i][l] = fmaf(a[j + l], b[i][j + l], s[i][l]);
  }
  for (int i = 0; i < NB; ++i) out[i] = retrieval_reduce_lanes(s[i]);
}

// Squared distance from the squared norms and the dot product (the expansion faiss and cdist use for large
// batches), clamped at 0 against rounding. Written without a product so that no compiler can contract it into
// an FMA on one path and not on the other.
IAENET_HD float retrieval_sq_dist(float norm_a, float norm_b, float dot) {
  const float d2 = (norm_a + norm_b) - (dot + dot);
  return d2 > 0.0f ? d2 : 0.0f;
}

// Whether candidate (d, row) beats (best_d, best_row): smaller distance, then lower bank row.
IAENET_HD bool retrieval_better(float d, int64_t row, float best_d, int64_t best_row) {
  return d < best_d || (d == best_d && row < best_row);
}

// Inserts (d, row) into the ascending list best_d/best_row of length k if it belongs there.
IAENET_HD void retrieval_topk_insert(float* best_d, int64_t* best_row, int64_t k, float d, int64_t row) {
  if (!retrieval_better(d, row, best_d[k - 1], best_row[k - 1])) return;
  int64_t pos = k - 1;
  while (pos > 0 && retrieval_better(d, row, best_d[pos - 1], best_row[pos - 1])) {
    best_d[pos] = best_d[pos - 1];
    best_row[pos] = best_row[pos - 1];
    --pos;
  }
  best_d[pos] = d;
  best_row[pos] = row;
}

}  // namespace iaenet
