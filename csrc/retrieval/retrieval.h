// Restricted nearest-neighbour retrieval: the k nearest bank rows of each query, searched only among the
// candidate rows that a set of selected patches reference (the shape-guided M2D retrieval of IAENet).
//
// Contract
//   bank    : (R, D) float32, C-contiguous, finite                      the M2D rows
//   indptr  : (M + 1,) int64, indptr[0] = 0, non-decreasing              CSR offsets patch -> rows
//   rows    : (L,) int64, L = indptr[M], each in [0, R)                 bank rows of every patch
//   patches : (Q,) int64, each in [0, M), duplicates allowed            the selected patches
//   queries : (C, D) float32, C-contiguous, finite
//   idx     : (C, k) int64 written in place                             bank rows, nearest first
//   dist2   : (C, k) float32 written in place                           their squared Euclidean distances
// The candidates are the union of rows[indptr[p] : indptr[p+1]] over the selected patches p, deduplicated
// with a mark array over the bank (no per-query candidate matrix, no sort). Each query's k nearest
// candidates come sorted by distance, ties going to the lower bank row. When fewer than k candidates exist,
// the trailing slots hold idx -1 and dist2 +inf (the Python layer turns that into an error).
// Squared distances are |a|^2 + |b|^2 - 2 a.b (clamped at 0) from dot products in one fixed float32 FMA order
// (retrieval_math.h) on every path, so the CPU and CUDA results are identical. `portable` makes the CPU path use
// the scalar functions of retrieval_math.h that the CUDA path runs instead of its AVX2/FMA kernel (same bits;
// for tests). The arguments are validated by the caller.
// Memory: R bytes of marks, plus U candidate indices and U + C norms (CPU) or R norms (CUDA), U = candidates;
// per thread k (distance, row) pairs per query of its tile.
#pragma once

#include <cstdint>

namespace iaenet {

void retrieval_cpu(const float* bank, int64_t r, int64_t d, const int64_t* indptr, const int64_t* rows,
                   const int64_t* patches, int64_t q, const float* queries, int64_t c, int64_t k, int64_t* idx,
                   float* dist2, bool portable = false);

// The same search and results, bit for bit, with exact pruning (retrieval_pruned_cpu.cpp): most candidates are
// ruled out by a lower bound on their distance from a p-dimensional projection, and only the others get the full
// D-dimensional distance.
//   proj_bank    : (R, p) float32, row i = V^T (bank[i] - m)       V: (D, p) orthonormal columns (to float32
//   proj_queries : (C, p) float32, row i = V^T (queries[i] - m)    rounding), m: any centre, |m| = centre_length
// Results are exact only when the projections are such (the Python layer builds them; iaenet.ops.retrieval).
// Extra memory: 4 (p + 3) U bytes for the projected candidates and their norms, 16 U bytes of bounds per thread.
void retrieval_pruned_cpu(const float* bank, int64_t r, int64_t d, const int64_t* indptr, const int64_t* rows,
                          const int64_t* patches, int64_t q, const float* queries, int64_t c, int64_t k,
                          int64_t* idx, float* dist2, const float* proj_bank, const float* proj_queries, int64_t p,
                          double centre_length, bool portable = false);
#ifdef IAENET_WITH_CUDA
void retrieval_cuda(const float* bank, int64_t r, int64_t d, const int64_t* indptr, const int64_t* rows,
                    const int64_t* patches, int64_t q, const float* queries, int64_t c, int64_t k, int64_t* idx,
                    float* dist2, std::intptr_t stream);
#endif

// The CUDA path keeps each thread's k best in registers: k is limited there (the CPU path has no limit).
constexpr int64_t kRetrievalCudaMaxK = 16;

}  // namespace iaenet
