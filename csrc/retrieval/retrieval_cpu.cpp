#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/parallel.h"
#include "retrieval/retrieval.h"
#include "retrieval/retrieval_math.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define IAENET_RETRIEVAL_AVX2 1
#endif

namespace iaenet {
namespace {

constexpr int64_t kQueryTile = 64;  // queries per task: each candidate tile comes from memory once per 64 queries
constexpr int64_t kRowTileBytes = 16 << 10;  // candidate rows per tile: half of L1, the query group and the
                                            // distances keep the rest, while the 64 queries sweep the tile
constexpr int kQueryGroup = 4;     // micro-kernel: 4 queries x 3 rows = 12 accumulator registers + 3 row loads
constexpr int kRowGroup = 3;
constexpr int64_t kNoRow = std::numeric_limits<int64_t>::max();

// The arithmetic of one path. dists(a, b, d, a_norm, b_norm, limit, out) sets
// out[i * kQueryGroup + q] = retrieval_sq_dist(a_norm[q], b_norm[i], retrieval_dots<1>(a[q], b[i])) for kQueryGroup
// queries a and kRowGroup rows b, and returns the bit mask of the pairs with out < limit[q] (bit i * kQueryGroup + q):
// the caller only visits those, so the top-k lists are touched by the few pairs that can still enter them.
// norm(x, d) = retrieval_dots<1>(x, x). All paths give the same bits.
struct DistKernels {
  unsigned (*dists)(const float* const* a, const float* const* b, int64_t d, const float* a_norm,
                    const float* b_norm, const float* limit, float* out);
  float (*norm)(const float* x, int64_t d);
};

unsigned dists_portable(const float* const* a, const float* const* b, int64_t d, const float* a_norm,
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

float norm_portable(const float* x, int64_t d) {
  const float* row[1] = {x};
  float n;
  retrieval_dots<1>(x, row, d, &n);
  return n;
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

// The operations of retrieval_dots with lane l of each register being partial sum s_l: 12 independent FMA chains
// per call, each row load reused for 4 queries (the query operands come from L1). The tail (d mod 8 elements)
// goes to lanes 0.. through masked loads; the masked-off lanes add fma(0, 0, s) = s.
__attribute__((target("avx2,fma"))) unsigned dists_avx2(const float* const* a, const float* const* b, int64_t d,
                                                         const float* a_norm, const float* b_norm,
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
  // Per row i: the dots of the four queries in one register, then retrieval_sq_dist lane-wise (the same IEEE
  // operations: (a_norm + b_norm) - (dot + dot), max with 0 equals the clamp for finite values) and the test
  // against each query's limit.
  const __m128 a_norm4 = _mm_loadu_ps(a_norm), limit4 = _mm_loadu_ps(limit), zero = _mm_setzero_ps();
  unsigned mask = 0;
  for (int i = 0; i < kRowGroup; ++i) {
    const __m128 dot = reduce4(s[i], s[kRowGroup + i], s[2 * kRowGroup + i], s[3 * kRowGroup + i]);
    const __m128 d2 = _mm_max_ps(_mm_sub_ps(_mm_add_ps(a_norm4, _mm_set1_ps(b_norm[i])), _mm_add_ps(dot, dot)), zero);
    _mm_storeu_ps(out + i * kQueryGroup, d2);
    mask |= static_cast<unsigned>(_mm_movemask_ps(_mm_cmplt_ps(d2, limit4))) << (i * kQueryGroup);
  }
  return mask;
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
#endif

DistKernels pick_kernels(bool portable) {
#ifdef IAENET_RETRIEVAL_AVX2
  if (!portable && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {dists_avx2, norm_avx2};
#endif
  return {dists_portable, norm_portable};
}

// Ascending bank rows referenced by the selected patches, deduplicated through a mark per bank row.
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

// The k best candidates of queries [q0, q1) into best_d/best_row ((q1 - q0) x k, pre-filled with +inf/kNoRow).
// Everything goes through the micro-kernel: short query and row groups at the ends are padded by repeating their
// last pointer, and the padded results are dropped. Candidates come in ascending bank row order, so a candidate
// enters a query's list exactly when its distance is below the list's current k-th distance (on a tie the
// earlier, lower row wins): that is the kernel's limit test, and retrieval_topk_insert re-checks it against the
// limit lowered by the rows of the same group.
void scan_query_tile(const DistKernels& kernels, const float* bank, int64_t d, const int64_t* cand,
                     const float* cand_norm, int64_t u, const float* queries, const float* query_norm, int64_t q0,
                     int64_t q1, int64_t k, float* best_d, int64_t* best_row) {
  const int64_t row_tile =
      std::max<int64_t>(1, kRowTileBytes / (d * static_cast<int64_t>(sizeof(float))) / kRowGroup) * kRowGroup;
  for (int64_t r0 = 0; r0 < u; r0 += row_tile) {
    const int64_t r1 = std::min(u, r0 + row_tile);
    for (int64_t qa = q0; qa < q1; qa += kQueryGroup) {
      const int64_t nq = std::min<int64_t>(kQueryGroup, q1 - qa);
      const float* a[kQueryGroup];
      float a_norm[kQueryGroup], limit[kQueryGroup];
      for (int t = 0; t < kQueryGroup; ++t) {
        const int64_t qt = qa + std::min<int64_t>(t, nq - 1);
        a[t] = queries + qt * d;
        a_norm[t] = query_norm[qt];
        limit[t] = best_d[(qt - q0) * k + k - 1];
      }
      for (int64_t j = r0; j < r1; j += kRowGroup) {
        const int64_t nb = std::min<int64_t>(kRowGroup, r1 - j);
        const float* b[kRowGroup];
        float b_norm[kRowGroup], dist[kQueryGroup * kRowGroup];
        for (int g = 0; g < kRowGroup; ++g) {
          const int64_t rg = j + std::min<int64_t>(g, nb - 1);
          b[g] = bank + cand[rg] * d;
          b_norm[g] = cand_norm[rg];
        }
        const unsigned mask = kernels.dists(a, b, d, a_norm, b_norm, limit, dist);
        if (!mask) continue;
        for (int64_t g = 0; g < nb; ++g) {
          for (int64_t t = 0; t < nq; ++t) {
            if (!(mask >> (g * kQueryGroup + t) & 1u)) continue;
            float* bd = best_d + (qa - q0 + t) * k;
            retrieval_topk_insert(bd, best_row + (qa - q0 + t) * k, k, dist[g * kQueryGroup + t], cand[j + g]);
            limit[t] = bd[k - 1];
          }
        }
      }
    }
  }
}

}  // namespace

void retrieval_cpu(const float* bank, int64_t r, int64_t d, const int64_t* indptr, const int64_t* rows,
                   const int64_t* patches, int64_t q, const float* queries, int64_t c, int64_t k, int64_t* idx,
                   float* dist2, bool portable) {
  const DistKernels kernels = pick_kernels(portable);
  const std::vector<int64_t> cand = candidate_union(r, indptr, rows, patches, q);
  const int64_t u = static_cast<int64_t>(cand.size());
  // The norms are (U + C) x D work against C x U x D for the search: serial, which saves two OpenMP fork/joins
  // (each costs milliseconds when other processes hold the cores).
  std::vector<float> cand_norm(u), query_norm(c);
  for (int64_t i = 0; i < u; ++i) cand_norm[i] = kernels.norm(bank + cand[i] * d, d);
  for (int64_t i = 0; i < c; ++i) query_norm[i] = kernels.norm(queries + i * d, d);
  const int64_t tiles = (c + kQueryTile - 1) / kQueryTile;
  parallel_for(
      tiles,
      [&](int64_t t) {
        const int64_t q0 = t * kQueryTile, q1 = std::min(c, q0 + kQueryTile);
        std::vector<float> best_d((q1 - q0) * k, std::numeric_limits<float>::infinity());
        std::vector<int64_t> best_row((q1 - q0) * k, kNoRow);
        scan_query_tile(kernels, bank, d, cand.data(), cand_norm.data(), u, queries, query_norm.data(), q0, q1, k,
                        best_d.data(), best_row.data());
        for (int64_t i = 0; i < (q1 - q0) * k; ++i) {
          idx[q0 * k + i] = best_row[i] == kNoRow ? -1 : best_row[i];
          dist2[q0 * k + i] = best_d[i];
        }
      },
      1);
}

}  // namespace iaenet
