#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/parallel.h"
#include "retrieval/retrieval.h"
#include "retrieval/retrieval_cpu_kernels.h"
#include "retrieval/retrieval_math.h"

namespace iaenet {
namespace {

constexpr double kParallelWork = 1.25e8;  // C x U x D below which one thread runs it (~5 ms)
constexpr int64_t kQueryTile = 64;  // queries per task: each candidate tile comes from memory once per 64 queries
constexpr int64_t kRowTileBytes = 16 << 10;  // candidate rows per tile: half of L1, the query group and the
                                            // distances keep the rest, while the 64 queries sweep the tile

// The k best candidates of queries [q0, q1) into best_d/best_row ((q1 - q0) x k, pre-filled with +inf /
// kRetrievalNoRow).
// Everything goes through the micro-kernel: short query and row groups at the ends are padded by repeating their
// last pointer, and the padded results are dropped. Candidates come in ascending bank row order, so a candidate
// enters a query's list exactly when its distance is below the list's current k-th distance (on a tie the
// earlier, lower row wins): that is the kernel's limit test, and retrieval_topk_insert re-checks it against the
// limit lowered by the rows of the same group.
void scan_query_tile(const RetrievalKernels& kernels, const float* bank, int64_t d, const int64_t* cand,
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
        const unsigned mask = kernels.block_dists(a, b, d, a_norm, b_norm, limit, dist);
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
  const RetrievalKernels kernels = pick_retrieval_kernels(portable);
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
        std::vector<int64_t> best_row((q1 - q0) * k, kRetrievalNoRow);
        scan_query_tile(kernels, bank, d, cand.data(), cand_norm.data(), u, queries, query_norm.data(), q0, q1, k,
                        best_d.data(), best_row.data());
        write_topk(best_d.data(), best_row.data(), (q1 - q0) * k, idx + q0 * k, dist2 + q0 * k);
      },
      1, static_cast<double>(c) * static_cast<double>(u) * static_cast<double>(d) >= kParallelWork);
}

}  // namespace iaenet
