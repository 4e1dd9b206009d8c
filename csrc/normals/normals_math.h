// Per-point arithmetic of normal estimation, shared by the CPU and CUDA paths (all in double).
//
// The normal is the eigenvector of the smallest eigenvalue of the neighbourhood's 3x3 covariance. The
// eigenvector comes from the closed-form solver of D. Eberly, "A Robust Eigensolver for 3x3 Symmetric
// Matrices" (Geometric Tools), the method Open3D's fast normal computation uses: eigenvalues from the
// trigonometric formula on the shifted, scaled matrix; then the eigenvector of the eigenvalue that is
// farthest from the other two first (cross products of rows), the middle one inside the plane orthogonal to
// it, and the last one as their cross product. That order keeps it accurate when two eigenvalues are close
// (planar patches, where the two tangent eigenvalues may nearly coincide).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/hostdevice.h"

namespace iaenet {

struct Sym3 {  // symmetric 3x3 matrix: a00 a01 a02 / a11 a12 / a22
  double a00, a01, a02, a11, a12, a22;
};

IAENET_HD double dot3(const double* a, const double* b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

IAENET_HD void cross3(const double* a, const double* b, double* out) {
  out[0] = a[1] * b[2] - a[2] * b[1];
  out[1] = a[2] * b[0] - a[0] * b[2];
  out[2] = a[0] * b[1] - a[1] * b[0];
}

// Covariance (divided by the count) of the points idx[0..count) of `points` (float32 xyz rows), two-pass in
// double: the mean first, then centred products, so far-from-origin scans lose no precision.
// `valid(j)` may reject entries (grid windows skip missing pixels); it returns the number of points used.
template <class Index, class Valid>
IAENET_HD int64_t neighbourhood_covariance(const float* points, Index idx, int64_t count, Valid valid, Sym3& cov) {
  double mean[3] = {0.0, 0.0, 0.0};
  int64_t used = 0;
  for (int64_t t = 0; t < count; ++t) {
    const int64_t j = idx(t);
    if (!valid(j)) continue;
    for (int c = 0; c < 3; ++c) mean[c] += points[3 * j + c];
    ++used;
  }
  cov = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  if (used == 0) return 0;
  for (int c = 0; c < 3; ++c) mean[c] /= static_cast<double>(used);
  for (int64_t t = 0; t < count; ++t) {
    const int64_t j = idx(t);
    if (!valid(j)) continue;
    const double x = points[3 * j] - mean[0], y = points[3 * j + 1] - mean[1], z = points[3 * j + 2] - mean[2];
    cov.a00 += x * x;
    cov.a01 += x * y;
    cov.a02 += x * z;
    cov.a11 += y * y;
    cov.a12 += y * z;
    cov.a22 += z * z;
  }
  const double inv = 1.0 / static_cast<double>(used);
  cov = {cov.a00 * inv, cov.a01 * inv, cov.a02 * inv, cov.a11 * inv, cov.a12 * inv, cov.a22 * inv};
  return used;
}

// Unit eigenvector of A for the simple eigenvalue `lambda`: the longest cross product of two rows of A - lambda*I.
IAENET_HD void eigenvector_from_rows(const Sym3& a, double lambda, double* out) {
  const double r0[3] = {a.a00 - lambda, a.a01, a.a02};
  const double r1[3] = {a.a01, a.a11 - lambda, a.a12};
  const double r2[3] = {a.a02, a.a12, a.a22 - lambda};
  double c01[3], c02[3], c12[3];
  cross3(r0, r1, c01);
  cross3(r0, r2, c02);
  cross3(r1, r2, c12);
  const double d01 = dot3(c01, c01), d02 = dot3(c02, c02), d12 = dot3(c12, c12);
  const double* best = c01;
  double best_d = d01;
  if (d02 > best_d) best = c02, best_d = d02;
  if (d12 > best_d) best = c12, best_d = d12;
  const double inv = best_d > 0.0 ? 1.0 / sqrt(best_d) : 0.0;
  for (int c = 0; c < 3; ++c) out[c] = best[c] * inv;
}

// Unit eigenvector of A for eigenvalue `lambda`, searched in the plane orthogonal to the unit eigenvector `w`.
IAENET_HD void eigenvector_in_complement(const Sym3& a, const double* w, double lambda, double* out) {
  double u[3], v[3];
  if (fabs(w[0]) > fabs(w[1])) {
    const double inv = 1.0 / sqrt(w[0] * w[0] + w[2] * w[2]);
    u[0] = -w[2] * inv, u[1] = 0.0, u[2] = w[0] * inv;
  } else {
    const double inv = 1.0 / sqrt(w[1] * w[1] + w[2] * w[2]);
    u[0] = 0.0, u[1] = w[2] * inv, u[2] = -w[1] * inv;
  }
  cross3(w, u, v);
  const double au[3] = {a.a00 * u[0] + a.a01 * u[1] + a.a02 * u[2], a.a01 * u[0] + a.a11 * u[1] + a.a12 * u[2],
                        a.a02 * u[0] + a.a12 * u[1] + a.a22 * u[2]};
  const double av[3] = {a.a00 * v[0] + a.a01 * v[1] + a.a02 * v[2], a.a01 * v[0] + a.a11 * v[1] + a.a12 * v[2],
                        a.a02 * v[0] + a.a12 * v[1] + a.a22 * v[2]};
  // The 2x2 matrix [[m00, m01], [m01, m11]] = [u v]^T (A - lambda I) [u v] is singular; take its null vector
  // from the row with the larger entries.
  double m00 = dot3(u, au) - lambda, m01 = dot3(u, av), m11 = dot3(v, av) - lambda;
  double cu = 1.0, cv = 0.0;  // out = cu*u + cv*v; u itself when the 2x2 matrix is zero
  const double abs00 = fabs(m00), abs01 = fabs(m01), abs11 = fabs(m11);
  if (abs00 >= abs11) {
    if (fmax(abs00, abs01) > 0.0) {
      if (abs00 >= abs01) {
        m01 /= m00;
        m00 = 1.0 / sqrt(1.0 + m01 * m01);
        m01 *= m00;
      } else {
        m00 /= m01;
        m01 = 1.0 / sqrt(1.0 + m00 * m00);
        m00 *= m01;
      }
      cu = m01, cv = -m00;
    }
  } else {
    if (fmax(abs11, abs01) > 0.0) {
      if (abs11 >= abs01) {
        m01 /= m11;
        m11 = 1.0 / sqrt(1.0 + m01 * m01);
        m01 *= m11;
      } else {
        m11 /= m01;
        m01 = 1.0 / sqrt(1.0 + m11 * m11);
        m11 *= m01;
      }
      cu = m11, cv = -m01;
    }
  }
  for (int c = 0; c < 3; ++c) out[c] = cu * u[c] + cv * v[c];
}

// Eigenvalues (ascending) of A and the unit eigenvector of the smallest one. A zero matrix gives a zero vector.
IAENET_HD void smallest_eigenvector(Sym3 a, double* eigenvalues, double* evec) {
  const double scale = fmax(fmax(fmax(fabs(a.a00), fabs(a.a01)), fmax(fabs(a.a02), fabs(a.a11))),
                            fmax(fabs(a.a12), fabs(a.a22)));
  eigenvalues[0] = eigenvalues[1] = eigenvalues[2] = 0.0;
  evec[0] = evec[1] = evec[2] = 0.0;
  if (scale == 0.0) return;
  // Work on A / scale (entries in [-1, 1]) so that the cubic's terms neither overflow nor underflow.
  a = {a.a00 / scale, a.a01 / scale, a.a02 / scale, a.a11 / scale, a.a12 / scale, a.a22 / scale};
  const double off = a.a01 * a.a01 + a.a02 * a.a02 + a.a12 * a.a12;
  if (off == 0.0) {  // diagonal: the axis of the smallest diagonal entry (the first one on ties)
    const double d[3] = {a.a00, a.a11, a.a22};
    int m = 0;
    if (d[1] < d[m]) m = 1;
    if (d[2] < d[m]) m = 2;
    evec[m] = 1.0;
    const double lo = d[m], hi = fmax(fmax(d[0], d[1]), d[2]);
    eigenvalues[0] = lo * scale;
    eigenvalues[1] = (d[0] + d[1] + d[2] - lo - hi) * scale;
    eigenvalues[2] = hi * scale;
    return;
  }
  const double q = (a.a00 + a.a11 + a.a22) / 3.0;
  const double b00 = a.a00 - q, b11 = a.a11 - q, b22 = a.a22 - q;
  const double p = sqrt((b00 * b00 + b11 * b11 + b22 * b22 + 2.0 * off) / 6.0);
  const double c00 = b11 * b22 - a.a12 * a.a12;
  const double c01 = a.a01 * b22 - a.a12 * a.a02;
  const double c02 = a.a01 * a.a12 - b11 * a.a02;
  const double det = (b00 * c00 - a.a01 * c01 + a.a02 * c02) / (p * p * p);
  const double half_det = fmin(fmax(0.5 * det, -1.0), 1.0);
  const double angle = acos(half_det) / 3.0;
  const double two_thirds_pi = 2.09439510239319549;
  const double beta2 = 2.0 * cos(angle), beta0 = 2.0 * cos(angle + two_thirds_pi), beta1 = -(beta0 + beta2);
  const double eval0 = q + p * beta0, eval1 = q + p * beta1, eval2 = q + p * beta2;
  if (half_det >= 0.0) {
    // eval2 is the best separated: its eigenvector first, then eval1's, and the smallest one's is their cross.
    double e2[3], e1[3];
    eigenvector_from_rows(a, eval2, e2);
    eigenvector_in_complement(a, e2, eval1, e1);
    cross3(e2, e1, evec);
  } else {
    eigenvector_from_rows(a, eval0, evec);
  }
  eigenvalues[0] = eval0 * scale;
  eigenvalues[1] = eval1 * scale;
  eigenvalues[2] = eval2 * scale;
}

// Flips `n` to point towards `camera` from point `p` (n . (camera - p) >= 0); a zero normal stays zero.
IAENET_HD void orient_towards(const float* p, const double* camera, double* n) {
  const double to_camera[3] = {camera[0] - p[0], camera[1] - p[1], camera[2] - p[2]};
  if (dot3(n, to_camera) < 0.0) {
    for (int c = 0; c < 3; ++c) n[c] = -n[c];
  }
}

// Normal of point i from its neighbour list nbr[0..count) (the point itself included, as Open3D counts it).
// Fewer than 3 neighbours or a zero covariance (all neighbours coincide) give a zero normal.
// `camera` null: the solver's sign is kept (unoriented).
IAENET_HD void knn_normal(const float* points, int64_t i, const int64_t* nbr, int64_t count, const double* camera,
                          float* out) {
  double n[3] = {0.0, 0.0, 0.0};
  if (count >= 3) {
    Sym3 cov;
    neighbourhood_covariance(
        points, [nbr](int64_t t) { return nbr[t]; }, count, [](int64_t) { return true; }, cov);
    double evals[3];
    smallest_eigenvector(cov, evals, n);
    if (camera) orient_towards(points + 3 * i, camera, n);
  }
  for (int c = 0; c < 3; ++c) out[c] = static_cast<float>(n[c]);
}

// A grid pixel holds a point when any coordinate is non-zero (the MVTec convention: zeros mark missing pixels).
IAENET_HD bool grid_valid(const float* grid, int64_t j) {
  return grid[3 * j] != 0.0f || grid[3 * j + 1] != 0.0f || grid[3 * j + 2] != 0.0f;
}

// Normal of pixel (r, c) of an organized (h, w, 3) grid by PCA over the valid pixels of its
// (2*half+1)^2 window. Zero when the pixel is missing, the window holds fewer than 3 valid points, or they
// are (numerically) collinear: the middle eigenvalue at most 1e-12 of the largest.
IAENET_HD void grid_normal(const float* grid, int64_t h, int64_t w, int64_t r, int64_t c, int64_t half,
                           const double* camera, float* out) {
  const int64_t i = r * w + c;
  double n[3] = {0.0, 0.0, 0.0};
  if (grid_valid(grid, i)) {
    const int64_t r0 = r - half < 0 ? 0 : r - half, r1 = r + half >= h ? h - 1 : r + half;
    const int64_t c0 = c - half < 0 ? 0 : c - half, c1 = c + half >= w ? w - 1 : c + half;
    const int64_t cols = c1 - c0 + 1;
    Sym3 cov;
    const int64_t used = neighbourhood_covariance(
        grid, [=](int64_t t) { return (r0 + t / cols) * w + c0 + t % cols; }, (r1 - r0 + 1) * cols,
        [grid](int64_t j) { return grid_valid(grid, j); }, cov);
    if (used >= 3) {
      double evals[3];
      smallest_eigenvector(cov, evals, n);
      if (evals[1] <= 1e-12 * evals[2]) {
        n[0] = n[1] = n[2] = 0.0;
      } else if (camera) {
        orient_towards(grid + 3 * i, camera, n);
      }
    }
  }
  for (int k = 0; k < 3; ++k) out[k] = static_cast<float>(n[k]);
}

}  // namespace iaenet
