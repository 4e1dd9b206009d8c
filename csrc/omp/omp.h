// Orthogonal matching pursuit residuals: how well each query is rebuilt from a few of its own atoms.
//
// Contract
//   bank     : (R, D) float32, C-contiguous, finite                the atoms' rows
//   queries  : (C, D) float32, C-contiguous, finite
//   idx      : (C, K) int64, each in [0, R), 1 <= K <= kOmpMaxAtoms  the K atoms of each query (e.g. its K nearest)
//   n_atoms  : 1 <= n_atoms <= K                                   greedy selection steps
//   residual : (C,) float32 written in place                       |q - sum_j gamma_j a_j|
//   codes    : (C, K) float64 written in place, or null            gamma on the picked atoms, 0 elsewhere
// The pursuit is sklearn's Gram OMP (orthogonal_mp_gram / sparse_encode(algorithm="omp")) in float64: pick the
// atom of largest |correlation| with the residual (the first on ties), refit all picked atoms by least squares
// through a growing Cholesky factor of their Gram matrix, and stop early when the best correlation squared is
// below float64 eps, when the best atom is already picked, or when the new atom's Schur complement is <= eps
// (linearly dependent). Both paths run omp_math.h, so the CPU and CUDA results are identical.
// Memory: per query K^2 + 4K doubles of scratch (registers / stack), nothing in between queries.
#pragma once

#include <cstdint>

namespace iaenet {

constexpr int64_t kOmpMaxAtoms = 16;

void omp_residuals_cpu(const float* bank, int64_t d, const float* queries, int64_t c, const int64_t* idx, int64_t k,
                       int64_t n_atoms, float* residual, double* codes);
#ifdef IAENET_WITH_CUDA
void omp_residuals_cuda(const float* bank, int64_t d, const float* queries, int64_t c, const int64_t* idx,
                        int64_t k, int64_t n_atoms, float* residual, double* codes, std::intptr_t stream);
#endif

}  // namespace iaenet
