// Per-point arithmetic of FPFH (Open3D/PCL semantics), shared by the CPU and CUDA paths. All pair
// geometry is in double, from float32 points and normals, as Open3D does it on its double copies.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/hostdevice.h"

namespace iaenet {

constexpr int kFpfhBins = 11;  // per angle feature
constexpr int kFpfhDims = 33;  // 3 features x 11 bins

IAENET_HD int fpfh_clamp_bin(double x) {
  const int b = static_cast<int>(floor(x));
  return b < 0 ? 0 : (b >= kFpfhBins ? kFpfhBins - 1 : b);
}

// atan2(y, x) to within 2e-6 rad: atan on [0, 1] by an odd degree-11 polynomial (least-squares fit, maximum
// error 1.7e-6 rad measured on a 2e5-point grid), extended to all quadrants by symmetry. NaN for (0, 0).
// The polynomial is evaluated in Estrin's scheme: short dependency chains matter more than operation count.
IAENET_HD double fpfh_atan2_approx(double y, double x) {
  const double ax = fabs(x), ay = fabs(y);
  const double z = (ax < ay ? ax : ay) / (ax < ay ? ay : ax);
  const double z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
  const double p01 = 0.9999772353187083 - 0.33262322083792284 * z2;
  const double p23 = 0.19354294620741136 - 0.11643317756054916 * z2;
  const double p45 = 0.05265484796300618 - 0.011722146720309266 * z2;
  double a = z * ((p01 + z4 * p23) + z8 * p45);
  const double half_pi = 1.57079632679489661923, pi = 3.14159265358979323846;
  a = ay > ax ? half_pi - a : a;  // selects rather than branches, so that SIMD lanes can evaluate it
  a = x < 0.0 ? pi - a : a;
  return copysign(a, y);  // the sign of y, -0.0 included (atan2(-0.0, -1) = -pi)
}

// Bin coordinate of the angle atan2(y, x) over [-pi, pi] in 11 parts, by the approximation: its floor is
// the bin unless it lies near a bin edge (fpfh_angle_bin).
IAENET_HD double fpfh_angle_coordinate(double y, double x) {
  const double pi = 3.14159265358979323846, bins_per_radian = kFpfhBins / (2.0 * pi);
  return (fpfh_atan2_approx(y, x) + pi) * bins_per_radian;
}

// Bin of the angle atan2(y, x), exactly Open3D's floor(11 (atan2 + pi) / 2pi), given s =
// fpfh_angle_coordinate(y, x): the cheap approximation decides unless it lands within 1e-4 of a bin edge
// (50x its error), where the library atan2 decides with Open3D's very expression. That is about 2 pairs in
// 10^4. NaN (y = x = 0) also takes the library path.
IAENET_HD int fpfh_angle_bin(double s, double y, double x) {
  const double pi = 3.14159265358979323846;
  if (fabs(s - rint(s)) > 1e-4) return fpfh_clamp_bin(s);
  return fpfh_clamp_bin(kFpfhBins * (atan2(y, x) + pi) / (2.0 * pi));
}

// The pair feature of (p1, n1) -> (p2, n2) as f[0..4) = {y, x, f1, f2} with f0 = atan2(y, x). Branch-free
// (selects, no jumps), so that the CPU path can evaluate it for many neighbours at once in SIMD lanes; the
// lanes compute the same IEEE operations in the same order, so the bits do not depend on the path.
IAENET_HD void fpfh_pair_features(const double* p1, const double* n1, const double* p2, const double* n2, double* f) {
  const double d[3] = {p2[0] - p1[0], p2[1] - p1[1], p2[2] - p1[2]};
  const double dist = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
  const double dot1 = n1[0] * d[0] + n1[1] * d[1] + n1[2] * d[2];
  const double dot2 = n2[0] * d[0] + n2[1] * d[1] + n2[2] * d[2];
  // Open3D swaps source and target when acos|a1| > acos|a2| with a = n.d/|d|. acos is decreasing and NaN
  // above 1 (where the comparison is false), so that is |n1.d| < |n2.d| <= |d|: no acos and no division.
  // Rounding makes the two differ only for cosines within a few 1e-16 of each other.
  const double c1 = fabs(dot1), c2 = fabs(dot2);
  const bool swap = (c1 < c2) & (c2 <= dist);
  double u[3], t[3];
  for (int c = 0; c < 3; ++c) {
    const double a = n1[c], b = n2[c];  // loaded unconditionally, then selected: no branch
    u[c] = swap ? b : a;
    t[c] = swap ? a : b;
  }
  const double sign = swap ? -1.0 : 1.0;
  // v = (sign*d) x u, normalised (by one reciprocal: Open3D divides, a difference of an ulp at most)
  double v[3] = {sign * (d[1] * u[2] - d[2] * u[1]), sign * (d[2] * u[0] - d[0] * u[2]),
                 sign * (d[0] * u[1] - d[1] * u[0])};
  const double v_norm = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  const double inv = 1.0 / v_norm;
  for (int c = 0; c < 3; ++c) v[c] *= inv;
  const double w[3] = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]};
  // Zero distance or v = 0 give the zero feature, f0 = atan2(0, 1) (the division results are then unused).
  const bool defined = (dist != 0.0) & (v_norm != 0.0);
  f[0] = defined ? w[0] * t[0] + w[1] * t[1] + w[2] * t[2] : 0.0;
  f[1] = defined ? u[0] * t[0] + u[1] * t[1] + u[2] * t[2] : 1.0;
  f[2] = defined ? v[0] * t[0] + v[1] * t[1] + v[2] * t[2] : 0.0;
  f[3] = defined ? (swap ? -dot2 : dot1) / dist : 0.0;
}

// The three bins of a pair feature f (fpfh_pair_features), given s = fpfh_angle_coordinate(f[0], f[1]).
IAENET_HD void fpfh_feature_bins(const double* f, double s, int* bins) {
  bins[0] = fpfh_angle_bin(s, f[0], f[1]);
  bins[1] = fpfh_clamp_bin(kFpfhBins * (f[2] + 1.0) * 0.5);
  bins[2] = fpfh_clamp_bin(kFpfhBins * (f[3] + 1.0) * 0.5);
}

IAENET_HD void fpfh_pair_bins(const double* p1, const double* n1, const double* p2, const double* n2, int* bins) {
  double f[4];
  fpfh_pair_features(p1, n1, p2, n2, f);
  fpfh_feature_bins(f, fpfh_angle_coordinate(f[0], f[1]), bins);
}

// Adds one pair's bins to a histogram of counts.
IAENET_HD void fpfh_count_bins(const int* bins, int* hist) {
  ++hist[bins[0]];
  ++hist[kFpfhBins + bins[1]];
  ++hist[2 * kFpfhBins + bins[2]];
}

// SPFH values from the pair counts: each pair adds 100/pairs to a bin of each feature (zero without pairs).
IAENET_HD void spfh_from_counts(const int* hist, int64_t pairs, double* spfh) {
  const double incr = pairs > 0 ? 100.0 / static_cast<double>(pairs) : 0.0;
  for (int b = 0; b < kFpfhDims; ++b) spfh[b] = hist[b] * incr;
}

IAENET_HD void load3(const float* src, double* dst) {
  dst[0] = src[0], dst[1] = src[1], dst[2] = src[2];
}

// SPFH of point i into spfh[0..33): over its neighbours nbr[1..count) (nbr[0] is the point itself), each
// pair adds 100/(count-1) to one bin of each feature, so each 11-bin part sums to 100. count <= 1: all zero.
IAENET_HD void spfh_point(const float* points, const float* normals, int64_t i, const int64_t* nbr, int64_t count,
                          double* spfh) {
  int hist[kFpfhDims];
  for (int b = 0; b < kFpfhDims; ++b) hist[b] = 0;
  double p1[3], n1[3];
  load3(points + 3 * i, p1);
  load3(normals + 3 * i, n1);
  for (int64_t t = 1; t < count; ++t) {
    const int64_t j = nbr[t];
    double p2[3], n2[3];
    load3(points + 3 * j, p2);
    load3(normals + 3 * j, n2);
    int bins[3];
    fpfh_pair_bins(p1, n1, p2, n2, bins);
    fpfh_count_bins(bins, hist);
  }
  spfh_from_counts(hist, count - 1, spfh);
}

// FPFH of point i into out[0..33) from the SPFH table (N, 33): the neighbours' SPFH weighted by
// 1/squared distance (Open3D weights by the squared distance its search returns), each part rescaled to sum
// to 100, plus the point's own SPFH, so each part sums to 200 (100 when every neighbour coincides with the
// point, which are skipped). count <= 1: all zero, as in Open3D.
IAENET_HD void fpfh_point(const float* points, int64_t i, const int64_t* nbr, int64_t count, const double* spfh,
                          float* out) {
  double acc[kFpfhDims];
  for (int b = 0; b < kFpfhDims; ++b) acc[b] = 0.0;
  if (count > 1) {
    const double px = points[3 * i], py = points[3 * i + 1], pz = points[3 * i + 2];
    for (int64_t t = 1; t < count; ++t) {
      const int64_t j = nbr[t];
      const double dx = points[3 * j] - px, dy = points[3 * j + 1] - py, dz = points[3 * j + 2] - pz;
      const double d2 = dx * dx + dy * dy + dz * dz;
      if (d2 == 0.0) continue;
      const double inv = 1.0 / d2;
      const double* s = spfh + kFpfhDims * j;
      for (int b = 0; b < kFpfhDims; ++b) acc[b] += s[b] * inv;
    }
    for (int part = 0; part < 3; ++part) {
      double sum = 0.0;
      for (int b = part * kFpfhBins; b < (part + 1) * kFpfhBins; ++b) sum += acc[b];
      const double scale = sum != 0.0 ? 100.0 / sum : 0.0;
      for (int b = part * kFpfhBins; b < (part + 1) * kFpfhBins; ++b) acc[b] = acc[b] * scale + spfh[kFpfhDims * i + b];
    }
  }
  for (int b = 0; b < kFpfhDims; ++b) out[b] = static_cast<float>(acc[b]);
}

}  // namespace iaenet
