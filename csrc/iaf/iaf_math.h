// The per-point arithmetic of the fused IAF inference (iaf.h), shared by the CPU and CUDA paths. Every step is a
// fixed sequence of IEEE operations (FMAs written out, nothing left for the compiler to contract, no library
// exp), so both paths, and every CPU SIMD variant, round alike.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/hostdevice.h"
#include "iaf/iaf.h"

namespace iaenet {

// ReLU that keeps NaN (like torch.relu) and the sign of a zero: exactly what max(+0, v) does on x86 (the second
// operand wins on NaN and on equal zeros), which the SIMD variants use.
IAENET_HD float iaf_relu(float v) { return v < 0.0f ? 0.0f : v; }

// 2^n for -126 <= n <= 127, built from its bits.
IAENET_HD float iaf_pow2(int n) {
  const int32_t bits = (n + 127) << 23;
#ifdef __CUDA_ARCH__
  return __int_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
#endif
}

// e^x for x <= 0 (the softmax's shifted logits), to 1 ulp (measured on 10^7 arguments): x = n ln2 + r with
// |r| <= ln2 / 2 (ln2 split in a short head and a tail), e^r by Cephes' degree-7 polynomial, times 2^n. 0 below
// kIafExpMin, where e^x < 2^-126 (the smallest normal float): an absolute error below 1.2e-38. NaN stays NaN. The
// library exp differs between the CPU and CUDA by an ulp here and there; this one is the same everywhere. The CPU
// SIMD variants evaluate it lane-wise with the same constants and operations (iaf_cpu_simd.h).
constexpr float kIafExpMin = -87.33f;
constexpr float kIafLog2e = 1.44269504f;
constexpr float kIafLn2Head = 0.693359375f;      // 9 bits
constexpr float kIafLn2Tail = -2.12194440e-4f;   // ln2 - head
constexpr float kIafExpC0 = 1.9875691500e-4f;    // e^r = 1 + r + r^2 (C5 + r (C4 + r (C3 + r (C2 + r (C1 + r C0)))))
constexpr float kIafExpC1 = 1.3981999507e-3f;
constexpr float kIafExpC2 = 8.3334519073e-3f;
constexpr float kIafExpC3 = 4.1665795894e-2f;
constexpr float kIafExpC4 = 1.6666665459e-1f;
constexpr float kIafExpC5 = 5.0000001201e-1f;

IAENET_HD float iaf_exp_nonpositive(float x) {
  if (!(x >= kIafExpMin)) return x != x ? x : 0.0f;
  const float n = floorf(fmaf(x, kIafLog2e, 0.5f));  // round(x / ln2), in [-126, 0]
  float r = fmaf(n, -kIafLn2Head, x);
  r = fmaf(n, -kIafLn2Tail, r);
  float p = kIafExpC0;
  p = fmaf(p, r, kIafExpC1);
  p = fmaf(p, r, kIafExpC2);
  p = fmaf(p, r, kIafExpC3);
  p = fmaf(p, r, kIafExpC4);
  p = fmaf(p, r, kIafExpC5);
  p = fmaf(p, r * r, r) + 1.0f;
  return p * iaf_pow2(static_cast<int>(n));
}

// Softmax of two logits, stable: the larger logit is subtracted from both, so the larger one's exponential is
// exactly 1 and the other's lies in [0, 1]; finite logits always give finite probabilities, a NaN logit gives NaN.
IAENET_HD void iaf_softmax2(const float* logits, float* p) {
  const bool second = logits[1] > logits[0];
  const float hi = second ? logits[1] : logits[0], lo = second ? logits[0] : logits[1];
  const float e = iaf_exp_nonpositive(lo - hi);
  const float sum = 1.0f + e;
  p[second ? 1 : 0] = 1.0f / sum;
  p[second ? 0 : 1] = e / sum;
}

// y[o] = relu?(b[o] + sum_i w[o][i] x[i]) for o < out: the terms accumulated in input order, one FMA each, from
// acc = b[o]. w is (out, in) row-major (torch.nn.Linear).
IAENET_HD void iaf_layer(const float* w, const float* b, int in, int out, const float* x, float* y, bool relu) {
  for (int o = 0; o < out; ++o) {
    const float* row = w + o * in;
    float acc = b[o];
    for (int i = 0; i < in; ++i) acc = fmaf(row[i], x[i], acc);
    y[o] = relu ? iaf_relu(acc) : acc;
  }
}

// The kIafInputs logits of `mlp` at x. scratch: 2 * kIafMaxWidth floats (the hidden activations, ping-pong).
IAENET_HD void iaf_mlp(const IafMlp& mlp, const float* x, float* logits, float* scratch) {
  const float* in = x;
  for (int l = 0; l < mlp.layers; ++l) {
    const bool last = l + 1 == mlp.layers;
    float* out = last ? logits : scratch + (l % 2) * kIafMaxWidth;
    iaf_layer(mlp.weight[l], mlp.bias[l], mlp.width[l], mlp.width[l + 1], in, out, !last);
    in = out;
  }
}

// The predictor's input: the scores weighted by the selector's softmax, x * S.
IAENET_HD void iaf_weigh(const float* x, const float* weights, float* xs) {
  xs[0] = x[0] * weights[0];
  xs[1] = x[1] * weights[1];
}

// One point: A = softmax(predictor(x * S))[1] with S = softmax(selector(x)); S is written when s is not null.
IAENET_HD void iaf_point(const IafNet& net, const float* x, float* a, float* s, float* scratch) {
  float logits[kIafInputs], weights[kIafInputs], xs[kIafInputs], p[kIafInputs];
  iaf_mlp(net.selector, x, logits, scratch);
  iaf_softmax2(logits, weights);
  iaf_weigh(x, weights, xs);
  iaf_mlp(net.predictor, xs, logits, scratch);
  iaf_softmax2(logits, p);
  *a = p[1];
  if (s != nullptr) {
    s[0] = weights[0];
    s[1] = weights[1];
  }
}

}  // namespace iaenet
