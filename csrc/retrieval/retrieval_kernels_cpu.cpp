#include "common/cpu_isa.h"
#include "retrieval/retrieval_cpu_kernels.h"

#include <algorithm>
#include <limits>

#include "retrieval/retrieval_math.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define IAENET_RETRIEVAL_AVX2 1
#endif

namespace iaenet {
namespace {

unsigned block_dists_portable(const float* const* a, const float* const* b, int64_t d, const float* a_norm,
                              const float* b_norm, const float* limit, float* out) {
  unsigned mask = 0;
  for (int q = 0; q < kQueryGroup; ++q) {
    float dots[kRowGroup];
    retrieval_dots<kRowGroup>(a[q], b, d, dots);
    for (int i = 0; i < kRowGroup; ++i) {
      const float d2 = retrieval_sq_dist(a_norm[q], b_norm[i], dots[i]);
      out[i * kQueryGroup + q] = d2;
      mask |= static_cast<unsigned>(d2 < limit[q]) << (i * kQueryGroup + q);
    }
  }
  return mask;
}

void pair_dists_portable(const float* const* a, const float* const* b, int64_t d, const float* a_norm,
                         const float* b_norm, float* out) {
  for (int i = 0; i < 4; ++i) {
    float dot;
    retrieval_dots<1>(a[i], b + i, d, &dot);
    out[i] = retrieval_sq_dist(a_norm[i], b_norm[i], dot);
  }
}

float norm_portable(const float* x, int64_t d) {
  const float* row[1] = {x};
  float n;
  retrieval_dots<1>(x, row, d, &n);
  return n;
}

void bounds_portable(const float* const* a, const float* b, int64_t p, const float* a_norm, const float* b_norm,
                     int64_t blocks, float* out, int64_t stride, float* minima, int64_t m_stride) {
  for (int q = 0; q < kQueryGroup; ++q) {
    for (int64_t i = 0; i < blocks; ++i) {
      float* run_min = minima + q * m_stride + (i / kBoundRun) * kBoundLanes;
      for (int l = 0; l < kBoundLanes; ++l) {
        float dot = 0.0f;
        for (int64_t j = 0; j < p; ++j) dot += a[q][j] * b[(i * p + j) * kBoundLanes + l];
        const float bound = (a_norm[q] + b_norm[i * kBoundLanes + l]) - (dot + dot);
        out[q * stride + i * kBoundLanes + l] = bound;
        if (i % kBoundRun == 0) run_min[l] = std::numeric_limits<float>::infinity();
        if (bound < run_min[l]) run_min[l] = bound;
      }
    }
  }
}

int64_t at_most_portable(const float* v, int64_t n, float limit, int32_t* out) {
  int64_t m = 0;
  for (int64_t i = 0; i < n; ++i)
    if (v[i] <= limit) out[m++] = static_cast<int32_t>(i);
  return m;
}

#ifdef IAENET_RETRIEVAL_AVX2
static_assert(kQueryGroup == 4, "the reduction below puts the four queries of one row into one register");

// Lane mask selecting the first `n` (0..8) lanes, for the tail loads.
__attribute__((target("avx2,fma"))) inline __m256i first_lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Four accumulators -> their four dot products, in the order of retrieval_reduce_lanes: hadd pairs lanes
// (s0+s1, s2+s3 | s4+s5, s6+s7), the second hadd forms (s0+s1)+(s2+s3) and (s4+s5)+(s6+s7), the final add joins
// the two halves. Float addition is commutative, so these are exactly the header's sums.
__attribute__((target("avx2,fma"))) inline __m128 reduce4(__m256 r0, __m256 r1, __m256 r2, __m256 r3) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(r0, r1), _mm256_hadd_ps(r2, r3));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// retrieval_sq_dist lane-wise: the same IEEE operations, (a_norm + b_norm) - (dot + dot); max with 0 equals the
// clamp for finite values.
__attribute__((target("avx2,fma"))) inline __m128 sq_dist4(__m128 a_norm, __m128 b_norm, __m128 dot) {
  return _mm_max_ps(_mm_sub_ps(_mm_add_ps(a_norm, b_norm), _mm_add_ps(dot, dot)), _mm_setzero_ps());
}

// The operations of retrieval_dots with lane l of each register being partial sum s_l: 12 independent FMA chains
// per call, each row load reused for 4 queries (the query operands come from L1). The tail (d mod 8 elements)
// goes to lanes 0.. through masked loads; the masked-off lanes add fma(0, 0, s) = s.
__attribute__((target("avx2,fma"))) unsigned block_dists_avx2(const float* const* a, const float* const* b,
                                                               int64_t d, const float* a_norm, const float* b_norm,
                                                               const float* limit, float* out) {
  __m256 s[kQueryGroup * kRowGroup];
  for (int i = 0; i < kQueryGroup * kRowGroup; ++i) s[i] = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + kRetrievalLanes <= d; j += kRetrievalLanes) {
    __m256 y[kRowGroup];
    for (int i = 0; i < kRowGroup; ++i) y[i] = _mm256_loadu_ps(b[i] + j);
    for (int q = 0; q < kQueryGroup; ++q) {
      const __m256 x = _mm256_loadu_ps(a[q] + j);
      for (int i = 0; i < kRowGroup; ++i) s[q * kRowGroup + i] = _mm256_fmadd_ps(x, y[i], s[q * kRowGroup + i]);
    }
  }
  if (j < d) {
    const __m256i mask = first_lanes(d - j);
    __m256 y[kRowGroup];
    for (int i = 0; i < kRowGroup; ++i) y[i] = _mm256_maskload_ps(b[i] + j, mask);
    for (int q = 0; q < kQueryGroup; ++q) {
      const __m256 x = _mm256_maskload_ps(a[q] + j, mask);
      for (int i = 0; i < kRowGroup; ++i) s[q * kRowGroup + i] = _mm256_fmadd_ps(x, y[i], s[q * kRowGroup + i]);
    }
  }
  // Per row i: the dots of the four queries in one register, their distances and the test against the limits.
  const __m128 a_norm4 = _mm_loadu_ps(a_norm), limit4 = _mm_loadu_ps(limit);
  unsigned mask = 0;
  for (int i = 0; i < kRowGroup; ++i) {
    const __m128 dot = reduce4(s[i], s[kRowGroup + i], s[2 * kRowGroup + i], s[3 * kRowGroup + i]);
    const __m128 d2 = sq_dist4(a_norm4, _mm_set1_ps(b_norm[i]), dot);
    _mm_storeu_ps(out + i * kQueryGroup, d2);
    mask |= static_cast<unsigned>(_mm_movemask_ps(_mm_cmplt_ps(d2, limit4))) << (i * kQueryGroup);
  }
  return mask;
}

// Four independent dot products (four FMA chains in flight), then their distances.
__attribute__((target("avx2,fma"))) void pair_dists_avx2(const float* const* a, const float* const* b, int64_t d,
                                                          const float* a_norm, const float* b_norm, float* out) {
  __m256 s[4];
  for (int i = 0; i < 4; ++i) s[i] = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + kRetrievalLanes <= d; j += kRetrievalLanes)
    for (int i = 0; i < 4; ++i) s[i] = _mm256_fmadd_ps(_mm256_loadu_ps(a[i] + j), _mm256_loadu_ps(b[i] + j), s[i]);
  if (j < d) {
    const __m256i mask = first_lanes(d - j);
    for (int i = 0; i < 4; ++i)
      s[i] = _mm256_fmadd_ps(_mm256_maskload_ps(a[i] + j, mask), _mm256_maskload_ps(b[i] + j, mask), s[i]);
  }
  _mm_storeu_ps(out, sq_dist4(_mm_loadu_ps(a_norm), _mm_loadu_ps(b_norm), reduce4(s[0], s[1], s[2], s[3])));
}

__attribute__((target("avx2,fma"))) float norm_avx2(const float* x, int64_t d) {
  __m256 s = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + kRetrievalLanes <= d; j += kRetrievalLanes) {
    const __m256 v = _mm256_loadu_ps(x + j);
    s = _mm256_fmadd_ps(v, v, s);
  }
  if (j < d) {
    const __m256 v = _mm256_maskload_ps(x + j, first_lanes(d - j));
    s = _mm256_fmadd_ps(v, v, s);
  }
  const __m256 zero = _mm256_setzero_ps();
  return _mm_cvtss_f32(reduce4(s, zero, zero, zero));
}

// The bounds of NB consecutive blocks (NB x 4 independent FMA chains: enough in flight to hide the FMA latency),
// each candidate load serving the 4 queries; their stores and running lane minima.
template <int NB>
__attribute__((target("avx2,fma"))) inline void bound_blocks(const float* const* a, const float* b, int64_t p,
                                                             const __m256* an, const float* b_norm, int64_t i,
                                                             float* out, int64_t stride, __m256* run_min) {
  __m256 s[NB][kQueryGroup];
#pragma GCC unroll 8
  for (int n = 0; n < NB; ++n)
#pragma GCC unroll 8
    for (int q = 0; q < kQueryGroup; ++q) s[n][q] = _mm256_setzero_ps();
  for (int64_t j = 0; j < p; ++j) {
    __m256 y[NB];
#pragma GCC unroll 8
    for (int n = 0; n < NB; ++n) y[n] = _mm256_loadu_ps(b + ((i + n) * p + j) * kBoundLanes);
#pragma GCC unroll 8
    for (int q = 0; q < kQueryGroup; ++q) {
      const __m256 x = _mm256_broadcast_ss(a[q] + j);
#pragma GCC unroll 8
      for (int n = 0; n < NB; ++n) s[n][q] = _mm256_fmadd_ps(x, y[n], s[n][q]);
    }
  }
#pragma GCC unroll 8
  for (int n = 0; n < NB; ++n) {
    const __m256 bn = _mm256_loadu_ps(b_norm + (i + n) * kBoundLanes);
#pragma GCC unroll 8
    for (int q = 0; q < kQueryGroup; ++q) {
      const __m256 bound = _mm256_sub_ps(_mm256_add_ps(an[q], bn), _mm256_add_ps(s[n][q], s[n][q]));
      _mm256_storeu_ps(out + q * stride + (i + n) * kBoundLanes, bound);
      run_min[q] = _mm256_min_ps(bound, run_min[q]);  // keeps run_min[q] where bound is NaN
    }
  }
}

__attribute__((target("avx2,fma"))) void bounds_avx2(const float* const* a, const float* b, int64_t p,
                                                     const float* a_norm, const float* b_norm, int64_t blocks,
                                                     float* out, int64_t stride, float* minima, int64_t m_stride) {
  static_assert(kBoundRun % 2 == 0, "runs hold whole pairs of blocks");
  __m256 an[kQueryGroup], run_min[kQueryGroup];
  for (int q = 0; q < kQueryGroup; ++q) an[q] = _mm256_set1_ps(a_norm[q]);
  for (int64_t r0 = 0; r0 < blocks; r0 += kBoundRun) {
    const int64_t r1 = std::min(blocks, r0 + kBoundRun);
    for (int q = 0; q < kQueryGroup; ++q) run_min[q] = _mm256_set1_ps(std::numeric_limits<float>::infinity());
    int64_t i = r0;
    for (; i + 2 <= r1; i += 2) bound_blocks<2>(a, b, p, an, b_norm, i, out, stride, run_min);
    if (i < r1) bound_blocks<1>(a, b, p, an, b_norm, i, out, stride, run_min);
    for (int q = 0; q < kQueryGroup; ++q)
      _mm256_storeu_ps(minima + q * m_stride + (r0 / kBoundRun) * kBoundLanes, run_min[q]);
  }
}

// 32 values per step: four compares joined into one mask, so the (usual) steps without a hit cost one branch.
__attribute__((target("avx2,fma"))) int64_t at_most_avx2(const float* v, int64_t n, float limit, int32_t* out) {
  const __m256 lim = _mm256_set1_ps(limit);
  int64_t m = 0, i = 0;
  for (; i + 32 <= n; i += 32) {
    uint32_t bits = 0;
    for (int g = 0; g < 4; ++g)
      bits |= static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(v + i + 8 * g), lim, _CMP_LE_OQ)))
              << (8 * g);
    while (bits) {
      out[m++] = static_cast<int32_t>(i + __builtin_ctz(bits));
      bits &= bits - 1;
    }
  }
  for (; i < n; ++i)
    if (v[i] <= limit) out[m++] = static_cast<int32_t>(i);
  return m;
}
#endif

}  // namespace

RetrievalKernels pick_retrieval_kernels(bool portable) {
#ifdef IAENET_RETRIEVAL_AVX2
  if (!portable && cpu_has(CpuIsa::Avx2))
    return {block_dists_avx2, pair_dists_avx2, norm_avx2, bounds_avx2, at_most_avx2};
#endif
  return {block_dists_portable, pair_dists_portable, norm_portable, bounds_portable, at_most_portable};
}

std::vector<int64_t> candidate_union(int64_t r, const int64_t* indptr, const int64_t* rows, const int64_t* patches,
                                     int64_t q) {
  std::vector<uint8_t> mark(r, 0);
  int64_t marked = 0;
  for (int64_t i = 0; i < q; ++i) {
    const int64_t p = patches[i];
    for (int64_t e = indptr[p]; e < indptr[p + 1]; ++e) {
      marked += !mark[rows[e]];
      mark[rows[e]] = 1;
    }
  }
  std::vector<int64_t> cand;
  cand.reserve(marked);
  for (int64_t row = 0; row < r; ++row)
    if (mark[row]) cand.push_back(row);
  return cand;
}

}  // namespace iaenet
