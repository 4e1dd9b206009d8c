// Per-element arithmetic of farthest point sampling, shared by the CPU and CUDA paths.
#pragma once

#include <cstdint>

#include "common/hostdevice.h"

namespace iaenet {

// Squared distance in the order (dx*dx + dy*dy) + dz*dz; the numpy reference uses the same order.
IAENET_HD float fps_sq_dist(const float* a, const float* b) {
  const float dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
  return dx * dx + dy * dy + dz * dz;
}

// Whether candidate (d, i) beats the current best (best_d, best_i): larger distance, then lower index.
IAENET_HD bool fps_better(float d, int64_t i, float best_d, int64_t best_i) {
  return d > best_d || (d == best_d && i < best_i);
}

}  // namespace iaenet
