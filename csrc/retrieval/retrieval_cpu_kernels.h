// CPU building blocks of the restricted retrieval, shared by the dense path (retrieval_cpu.cpp) and the pruned
// path (retrieval_pruned_cpu.cpp). Each has an AVX2/FMA version and a portable one, picked at run time; the
// distances of both are bit-identical to the retrieval_math.h functions the CUDA path runs.
#pragma once

#include <cstdint>
#include <vector>

namespace iaenet {

constexpr int kQueryGroup = 4;  // dense micro-kernel: 4 queries x 3 rows = 12 accumulator registers + 3 row loads
constexpr int kRowGroup = 3;
constexpr int kBoundLanes = 8;  // pruned path: lower bounds of 8 candidates per register
constexpr int64_t kBoundRun = 32;  // pruned path: blocks per run (one lane minimum per run)
constexpr int64_t kRetrievalNoRow = INT64_MAX;  // an empty top-k slot (written out as -1)

struct RetrievalKernels {
  // out[i * kQueryGroup + q] = retrieval_sq_dist(a_norm[q], b_norm[i], retrieval_dots<1>(a[q], b[i])) for the
  // kQueryGroup queries a and kRowGroup rows b; returns the bit mask of the pairs with out < limit[q]
  // (bit i * kQueryGroup + q).
  unsigned (*block_dists)(const float* const* a, const float* const* b, int64_t d, const float* a_norm,
                          const float* b_norm, const float* limit, float* out);
  // out[i] = retrieval_sq_dist(a_norm[i], b_norm[i], retrieval_dots<1>(a[i], b[i])) for 4 independent pairs.
  void (*pair_dists)(const float* const* a, const float* const* b, int64_t d, const float* a_norm,
                     const float* b_norm, float* out);
  // retrieval_dots<1>(x, x).
  float (*norm)(const float* x, int64_t d);
  // Lower bounds of kQueryGroup projected queries a (p floats each) against `blocks` blocks of 8 projected
  // candidates (block i: b[(i * p + j) * 8 + l], dimension-major): out[q * stride + 8 i + l] =
  // (a_norm[q] + b_norm[8 i + l]) - 2 a[q].b_{8 i + l}, and per run of kBoundRun blocks the smallest bound of each
  // lane: minima[q * m_stride + 8 run + l] (NaN bounds are ignored; +inf when a lane has none). Any float order:
  // these are lower bounds used with a rounding margin, never results.
  void (*bounds)(const float* const* a, const float* b, int64_t p, const float* a_norm, const float* b_norm,
                 int64_t blocks, float* out, int64_t stride, float* minima, int64_t m_stride);
  // Writes the positions i < n with v[i] <= limit to out (ascending) and returns how many.
  int64_t (*at_most)(const float* v, int64_t n, float limit, int32_t* out);
};

// The AVX2/FMA kernels when the CPU has them and `portable` is false, else the portable ones.
RetrievalKernels pick_retrieval_kernels(bool portable);

// Copies n top-k entries of consecutive queries to the outputs; an empty slot becomes idx -1 (dist2 stays +inf).
inline void write_topk(const float* best_d, const int64_t* best_row, int64_t n, int64_t* idx, float* dist2) {
  for (int64_t i = 0; i < n; ++i) {
    idx[i] = best_row[i] == kRetrievalNoRow ? -1 : best_row[i];
    dist2[i] = best_d[i];
  }
}

// Ascending bank rows referenced by the selected patches, deduplicated through a mark per bank row.
std::vector<int64_t> candidate_union(int64_t r, const int64_t* indptr, const int64_t* rows, const int64_t* patches,
                                     int64_t q);

}  // namespace iaenet
