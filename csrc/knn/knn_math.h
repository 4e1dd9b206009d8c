// Per-element arithmetic of the k-nearest-neighbour search, shared by the CPU and CUDA paths.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/hostdevice.h"

namespace iaenet {

// Squared distance in the order (dx*dx + dy*dy) + dz*dz, all float32. The numpy reference (knn_reference)
// evaluates the same expression left to right, so every path produces bit-identical distances.
IAENET_HD float knn_sq_dist(const float* a, const float* b) {
  const float dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
  return dx * dx + dy * dy + dz * dz;
}

// The bit pattern of a squared distance as an unsigned integer. Squared distances are >= +0 (never -0 or
// NaN for finite inputs), and for non-negative floats the bit patterns order exactly like the values, so
// integer radix selection on these bits selects by distance.
IAENET_HD uint32_t knn_dist_bits(float d) {
  uint32_t bits;
#ifdef __CUDA_ARCH__
  bits = __float_as_uint(d);
#else
  std::memcpy(&bits, &d, sizeof bits);
#endif
  return bits;
}

IAENET_HD float knn_bits_dist(uint32_t bits) {
  float d;
#ifdef __CUDA_ARCH__
  d = __uint_as_float(bits);
#else
  std::memcpy(&d, &bits, sizeof d);
#endif
  return d;
}

// A unique sort key for neighbour (d, i): distance bits above, index below (indices fit 32 bits, checked by the
// binding). Keys order by distance, then by index, so sorting keys sorts neighbours with the tie rule built in.
IAENET_HD uint64_t knn_key(float d, int64_t i) {
  return (static_cast<uint64_t>(knn_dist_bits(d)) << 32) | static_cast<uint64_t>(static_cast<uint32_t>(i));
}

// Lower bound on the squared distance from query coordinate q to anything beyond a grid slab face at
// `face`, shrunk so that float32 rounding can never make a point beyond the face compare below it.
// The computed float distance of a point at true squared distance D satisfies fl(D) >= D (1 - 6 u) with
// u = 2^-24 (three rounded subtractions, three products, two sums); 1e-6 covers that with room, and the
// absolute slack `margin` covers the double-precision rounding of cell boundaries.
IAENET_HD double knn_face_bound(double gap, double margin) {
  const double g = gap - margin;
  return g > 0.0 ? g * g * (1.0 - 1e-6) : 0.0;
}

}  // namespace iaenet
