// Per-element arithmetic of the restricted retrieval, shared by the CPU and CUDA paths.
#pragma once

#include <cstdint>

#include "common/hostdevice.h"

namespace iaenet {

// Distances accumulate in kRetrievalLanes partial sums: lane l sums (a[j] - b[j])^2 over j = l (mod 8) in
// increasing j, then the lanes are added as ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)). The order is
// fixed (the same bits on every path, no FMA contraction: CUDA builds use --fmad=false) and maps onto one
// 8-wide SIMD register on the CPU, so the compiler can vectorise it without changing a bit.
constexpr int kRetrievalLanes = 8;

IAENET_HD float retrieval_reduce_lanes(const float* s) {
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// Squared distances from `a` (d floats) to NB bank rows b[0..NB) at once; out[i] equals what NB = 1 gives for
// b[i] alone. Several rows per call give the CPU independent accumulator chains (latency hiding) and reuse
// each load of `a`.
template <int NB>
IAENET_HD void retrieval_sq_dists(const float* a, const float* const* b, int64_t d, float* out) {
  float s[NB][kRetrievalLanes];
  for (int i = 0; i < NB; ++i)
    for (int l = 0; l < kRetrievalLanes; ++l) s[i][l] = 0.0f;
  int64_t j = 0;
  for (; j + kRetrievalLanes <= d; j += kRetrievalLanes) {
    for (int i = 0; i < NB; ++i) {
      for (int l = 0; l < kRetrievalLanes; ++l) {
        const float t = a[j + l] - b[i][j + l];
        s[i][l] += t * t;
      }
    }
  }
  for (int i = 0; i < NB; ++i) {
    for (int64_t jt = j; jt < d; ++jt) {
      const float t = a[jt] - b[i][jt];
      s[i][jt - j] += t * t;
    }
    out[i] = retrieval_reduce_lanes(s[i]);
  }
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
