// The AVX-512 variant of the IAF inference (iaf_cpu_simd.h with 16-float vectors). Everything included before the
// target pragma keeps the baseline ISA; only this file's own functions are compiled for AVX-512.
#include "iaf/iaf_cpu_blocks.h"
#include "iaf/iaf_math.h"

#ifdef IAENET_IAF_X86
#include <immintrin.h>

#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")

#include "iaf/iaf_cpu_simd.h"

namespace iaenet {
namespace {

struct Avx512 {
  using V = __m512;
  static constexpr int kLanes = 16;
  static constexpr int kVectors = 4;
  static constexpr int kUnits = 6;  // 4 x 6 accumulators + 4 inputs + 1 broadcast of the 32 registers

  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V broadcast(float x) { return _mm512_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  // max(+0, v): v on NaN and on either zero, as iaf_relu.
  static V relu(V v) { return _mm512_max_ps(_mm512_setzero_ps(), v); }
  static unsigned nonzero_lanes(V v) { return _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ); }
};

static_assert(IafSimdBlock<Avx512>::kPoints == kIafAvx512Block, "the block size iaf_cpu.cpp uses");

}  // namespace

void iaf_block_avx512(const IafNet& net, const float* scores, const int64_t* order, int64_t begin, int64_t end,
                      float* a, float* s, float* act) {
  IafSimdBlock<Avx512>(net, act).run(scores, order, begin, end, a, s);
}

}  // namespace iaenet
#endif
