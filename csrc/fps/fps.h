// Farthest point sampling.
//
// Contract
//   points : (N, 3) float32, C-contiguous, finite
//   out    : (S,) int64 written in place, S <= N
//   start  : index of the first sample, 0 <= start < N
// out[0] = start; out[i] = the point farthest (squared Euclidean distance, float32) from all earlier samples,
// ties going to the lowest index. Both paths evaluate the same float32 expressions (fps_math.h), so the CPU
// and CUDA results are identical. Memory: O(N) scratch, no N x N buffer.
#pragma once

#include <cstdint>

namespace iaenet {

void fps_cpu(const float* points, int64_t n, int64_t start, int64_t* out, int64_t s);
#ifdef IAENET_WITH_CUDA
void fps_cuda(const float* points, int64_t n, int64_t start, int64_t* out, int64_t s, std::intptr_t stream);
#endif

}  // namespace iaenet
