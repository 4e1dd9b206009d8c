// The CPU SIMD variants of the IAF inference, which run blocks of points (iaf_cpu_simd.h), and the order they
// take the points in.
#pragma once

#include <cstdint>
#include <vector>

#include "iaf/iaf.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define IAENET_IAF_X86 1
#endif

namespace iaenet {

// Points per block (iaf_cpu_simd.h): 4 vectors of 16 (AVX-512), 3 vectors of 8 (AVX2).
constexpr int kIafAvx512Block = 64;
constexpr int kIafAvx2Block = 24;

// An order of the n points (N, 2) in which each run of about `block` points lies close together in score space:
// the points sorted into a grid of about n / block cells whose rows and columns hold equal shares of the points
// (each coordinate's approximate rank, from a histogram), row by row, every other row backwards, so that
// consecutive cells touch. Such a block leaves many hidden units at zero in all its lanes, and the kernel skips
// those. NaN and inf scores go to the first cell. The result of each point does not depend on the order.
std::vector<int64_t> iaf_locality_order(const float* scores, int64_t n, int64_t block);

#ifdef IAENET_IAF_X86
// The points order[begin .. end) (or begin .. end when order is null): at most kIafAvx512Block / kIafAvx2Block of
// them; same contract as iaf_forward_cpu. act: the caller's working memory, 2 * iaf_max_width(net) * (block size)
// floats, 64-byte aligned.
void iaf_block_avx512(const IafNet& net, const float* scores, const int64_t* order, int64_t begin, int64_t end,
                      float* a, float* s, float* act);
void iaf_block_avx2(const IafNet& net, const float* scores, const int64_t* order, int64_t begin, int64_t end,
                    float* a, float* s, float* act);
#endif

}  // namespace iaenet
