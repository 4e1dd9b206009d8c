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
  using M = __mmask16;
  static constexpr int kLanes = 16;
  static constexpr int kVectors = 4;
  static constexpr int kUnits = 6;  // 4 x 6 accumulators + 4 inputs + 1 broadcast of the 32 registers

  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V broadcast(float x) { return _mm512_set1_ps(x); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  // max(+0, v): v on NaN and on either zero, as iaf_relu.
  static V relu(V v) { return _mm512_max_ps(_mm512_setzero_ps(), v); }
  static V floor(V v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static V pow2(V n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23));
  }
  static M greater(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static M at_least(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static M is_nan(V v) { return _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q); }
  static V select(M m, V if_false, V if_true) { return _mm512_mask_blend_ps(m, if_false, if_true); }
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
