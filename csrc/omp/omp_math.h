// The arithmetic of the OMP residuals (omp.h), shared by the CPU and CUDA paths: float64 throughout, in one fixed
// order, never contracted into FMAs (-ffp-contract=off on the CPU, --fmad=false on CUDA).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/hostdevice.h"
#include "omp/omp.h"

namespace iaenet {

constexpr double kOmpEps = 2.220446049250313e-16;  // float64 machine epsilon, sklearn's min_float

// Dot product over D terms in 4 partial sums (term j goes to sum j mod 4), joined as (s0 + s1) + (s2 + s3):
// independent chains the CPU compiler can keep in one SIMD register.
constexpr int kOmpLanes = 4;

IAENET_HD double omp_dot(const float* a, const float* b, int64_t d) {
  double s[kOmpLanes] = {0.0, 0.0, 0.0, 0.0};
  int64_t j = 0;
  for (; j + kOmpLanes <= d; j += kOmpLanes)
    for (int l = 0; l < kOmpLanes; ++l) s[l] += static_cast<double>(a[j + l]) * static_cast<double>(b[j + l]);
  for (int l = 0; j + l < d; ++l) s[l] += static_cast<double>(a[j + l]) * static_cast<double>(b[j + l]);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// Solves L y = b in place (b becomes y) for the lower-triangular n x n factor L (row stride kOmpMaxAtoms).
IAENET_HD void omp_forward(const double* L, int64_t n, double* b) {
  for (int64_t i = 0; i < n; ++i) {
    double s = b[i];
    for (int64_t j = 0; j < i; ++j) s -= L[i * kOmpMaxAtoms + j] * b[j];
    b[i] = s / L[i * kOmpMaxAtoms + i];
  }
}

// Solves L^T x = y in place.
IAENET_HD void omp_backward(const double* L, int64_t n, double* y) {
  for (int64_t i = n - 1; i >= 0; --i) {
    double s = y[i];
    for (int64_t j = i + 1; j < n; ++j) s -= L[j * kOmpMaxAtoms + i] * y[j];
    y[i] = s / L[i * kOmpMaxAtoms + i];
  }
}

// The OMP of query q over its k atoms (bank rows row[0..k)); returns the residual norm and, when codes is not
// null, writes the k coefficients (0 for atoms not picked).
IAENET_HD float omp_residual(const float* bank, int64_t d, const float* q, const int64_t* row, int64_t k,
                             int64_t n_atoms, double* codes) {
  double gram[kOmpMaxAtoms * kOmpMaxAtoms], cov[kOmpMaxAtoms], alpha[kOmpMaxAtoms];
  double L[kOmpMaxAtoms * kOmpMaxAtoms], gamma[kOmpMaxAtoms];
  int64_t picked[kOmpMaxAtoms];
  for (int64_t i = 0; i < k; ++i) {
    const float* a = bank + row[i] * d;
    cov[i] = omp_dot(a, q, d);
    alpha[i] = cov[i];
    for (int64_t j = 0; j <= i; ++j) {
      gram[i * kOmpMaxAtoms + j] = omp_dot(a, bank + row[j] * d, d);
      gram[j * kOmpMaxAtoms + i] = gram[i * kOmpMaxAtoms + j];
    }
  }
  int64_t active = 0;
  while (active < n_atoms) {
    int64_t lam = 0;
    for (int64_t i = 1; i < k; ++i)
      if (fabs(alpha[i]) > fabs(alpha[lam])) lam = i;
    bool chosen = false;
    for (int64_t j = 0; j < active; ++j) chosen = chosen || picked[j] == lam;
    if (chosen || alpha[lam] * alpha[lam] < kOmpEps) break;
    if (active > 0) {
      // The new row of the Cholesky factor: L w = G[picked, lam], Schur complement G[lam, lam] - |w|^2.
      double* w = L + active * kOmpMaxAtoms;
      for (int64_t j = 0; j < active; ++j) w[j] = gram[picked[j] * kOmpMaxAtoms + lam];
      omp_forward(L, active, w);
      double schur = gram[lam * kOmpMaxAtoms + lam];
      for (int64_t j = 0; j < active; ++j) schur -= w[j] * w[j];
      if (schur <= kOmpEps) break;
      w[active] = sqrt(schur);
    } else {
      L[0] = sqrt(gram[lam * kOmpMaxAtoms + lam]);
    }
    picked[active++] = lam;
    for (int64_t j = 0; j < active; ++j) gamma[j] = cov[picked[j]];
    omp_forward(L, active, gamma);
    omp_backward(L, active, gamma);
    for (int64_t i = 0; i < k; ++i) {
      double s = cov[i];
      for (int64_t j = 0; j < active; ++j) s -= gram[i * kOmpMaxAtoms + picked[j]] * gamma[j];
      alpha[i] = s;
    }
  }
  double r2 = 0.0;
  for (int64_t l = 0; l < d; ++l) {
    double rebuilt = 0.0;
    for (int64_t j = 0; j < active; ++j) rebuilt += gamma[j] * static_cast<double>(bank[row[picked[j]] * d + l]);
    const double diff = static_cast<double>(q[l]) - rebuilt;
    r2 += diff * diff;
  }
  if (codes != nullptr) {
    for (int64_t i = 0; i < k; ++i) codes[i] = 0.0;
    for (int64_t j = 0; j < active; ++j) codes[picked[j]] = gamma[j];
  }
  return static_cast<float>(sqrt(r2));
}

}  // namespace iaenet
