// The AVX2 variant of the IAF inference (iaf_cpu_simd.h with 8-float vectors). Everything included before the
// target pragma keeps the baseline ISA; only this file's own functions are compiled for AVX2 + FMA.
#include "iaf/iaf_cpu_blocks.h"
#include "iaf/iaf_math.h"

#ifdef IAENET_IAF_X86
#include <immintrin.h>

#pragma GCC target("avx2,fma")

#include "iaf/iaf_cpu_simd.h"

namespace iaenet {
namespace {

struct Avx2 {
  using V = __m256;
  using M = __m256;  // all-ones lanes
  static constexpr int kLanes = 8;
  static constexpr int kVectors = 3;
  static constexpr int kUnits = 4;  // 3 x 4 accumulators + 3 inputs + 1 broadcast: the 16 registers

  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V broadcast(float x) { return _mm256_set1_ps(x); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  // max(+0, v): v on NaN and on either zero, as iaf_relu.
  static V relu(V v) { return _mm256_max_ps(_mm256_setzero_ps(), v); }
  static V floor(V v) { return _mm256_floor_ps(v); }
  static V pow2(V n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
  static M greater(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static M at_least(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static M is_nan(V v) { return _mm256_cmp_ps(v, v, _CMP_UNORD_Q); }
  static V select(M m, V if_false, V if_true) { return _mm256_blendv_ps(if_false, if_true, m); }
  static unsigned nonzero_lanes(V v) {
    return static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ)));
  }
};

static_assert(IafSimdBlock<Avx2>::kPoints == kIafAvx2Block, "the block size iaf_cpu.cpp uses");

}  // namespace

void iaf_block_avx2(const IafNet& net, const float* scores, const int64_t* order, int64_t begin, int64_t end,
                    float* a, float* s, float* act) {
  IafSimdBlock<Avx2>(net, act).run(scores, order, begin, end, a, s);
}

}  // namespace iaenet
#endif
