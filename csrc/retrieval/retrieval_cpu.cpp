#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/parallel.h"
#include "retrieval/retrieval.h"
#include "retrieval/retrieval_math.h"

// The distance loop is compiled twice on x86-64 GCC/Clang: for AVX2 (the 8 lanes of retrieval_math.h fill one
// register) and for the baseline; the loader picks one at run time. Neither clone enables FMA, so both round
// exactly like retrieval_math.h says.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define IAENET_RETRIEVAL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define IAENET_RETRIEVAL_CLONES
#endif

namespace iaenet {
namespace {

constexpr int64_t kQueryTile = 8;   // queries per task: each candidate tile is read once per 8 queries
constexpr int64_t kRowTile = 64;    // candidate rows per tile: 64 x D floats stay in L1/L2 while 8 queries sweep them
constexpr int kRowGroup = 4;        // rows per distance call: independent accumulator chains
constexpr int64_t kNoRow = std::numeric_limits<int64_t>::max();

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

#if defined(__GNUC__) || defined(__clang__)
// The 8 lanes of retrieval_math.h as one vector: lane l of `s[i]` is the partial sum s[i][l] there, updated by the
// same float operations in the same order (compilers do not vectorise the array form of the header reliably).
typedef float Lanes __attribute__((vector_size(sizeof(float) * kRetrievalLanes)));

// retrieval_sq_dists<kRowGroup> with vector lanes: the same bits, several times faster.
inline void sq_dists_group(const float* a, const float* const* b, int64_t d, float* out) {
  Lanes s[kRowGroup] = {};
  int64_t j = 0;
  for (; j + kRetrievalLanes <= d; j += kRetrievalLanes) {
    Lanes va, vb;
    __builtin_memcpy(&va, a + j, sizeof(va));  // unaligned loads
    for (int i = 0; i < kRowGroup; ++i) {
      __builtin_memcpy(&vb, b[i] + j, sizeof(vb));
      const Lanes t = va - vb;
      s[i] += t * t;
    }
  }
  for (int i = 0; i < kRowGroup; ++i) {
    float lanes[kRetrievalLanes];
    __builtin_memcpy(lanes, &s[i], sizeof(lanes));
    for (int64_t jt = j; jt < d; ++jt) {
      const float t = a[jt] - b[i][jt];
      lanes[jt - j] += t * t;
    }
    out[i] = retrieval_reduce_lanes(lanes);
  }
}
#else
inline void sq_dists_group(const float* a, const float* const* b, int64_t d, float* out) {
  retrieval_sq_dists<kRowGroup>(a, b, d, out);
}
#endif

// The k best candidates of queries [q0, q1) into best_d/best_row ((q1 - q0) x k, pre-filled with +inf/kNoRow).
IAENET_RETRIEVAL_CLONES void scan_query_tile(const float* bank, int64_t d, const int64_t* cand, int64_t u,
                                             const float* queries, int64_t q0, int64_t q1, int64_t k, float* best_d,
                                             int64_t* best_row) {
  for (int64_t r0 = 0; r0 < u; r0 += kRowTile) {
    const int64_t r1 = std::min(u, r0 + kRowTile);
    for (int64_t qi = q0; qi < q1; ++qi) {
      const float* a = queries + qi * d;
      float* bd = best_d + (qi - q0) * k;
      int64_t* br = best_row + (qi - q0) * k;
      int64_t j = r0;
      for (; j + kRowGroup <= r1; j += kRowGroup) {
        const float* b[kRowGroup];
        float dist[kRowGroup];
        for (int g = 0; g < kRowGroup; ++g) b[g] = bank + cand[j + g] * d;
        sq_dists_group(a, b, d, dist);
        for (int g = 0; g < kRowGroup; ++g) retrieval_topk_insert(bd, br, k, dist[g], cand[j + g]);
      }
      for (; j < r1; ++j) {
        const float* b[1] = {bank + cand[j] * d};
        float dist[1];
        retrieval_sq_dists<1>(a, b, d, dist);
        retrieval_topk_insert(bd, br, k, dist[0], cand[j]);
      }
    }
  }
}

}  // namespace

void retrieval_cpu(const float* bank, int64_t r, int64_t d, const int64_t* indptr, const int64_t* rows,
                   const int64_t* patches, int64_t q, const float* queries, int64_t c, int64_t k, int64_t* idx,
                   float* dist2) {
  const std::vector<int64_t> cand = candidate_union(r, indptr, rows, patches, q);
  const int64_t u = static_cast<int64_t>(cand.size());
  const int64_t tiles = (c + kQueryTile - 1) / kQueryTile;
  parallel_for(
      tiles,
      [&](int64_t t) {
        const int64_t q0 = t * kQueryTile, q1 = std::min(c, q0 + kQueryTile);
        std::vector<float> best_d((q1 - q0) * k, std::numeric_limits<float>::infinity());
        std::vector<int64_t> best_row((q1 - q0) * k, kNoRow);
        scan_query_tile(bank, d, cand.data(), u, queries, q0, q1, k, best_d.data(), best_row.data());
        for (int64_t i = 0; i < (q1 - q0) * k; ++i) {
          idx[q0 * k + i] = best_row[i] == kNoRow ? -1 : best_row[i];
          dist2[q0 * k + i] = best_d[i];
        }
      },
      1);
}

}  // namespace iaenet
