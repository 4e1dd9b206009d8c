// The blocked SIMD form of the IAF inference, written once over a vector-traits class S and instantiated by
// iaf_cpu_avx512.cpp and iaf_cpu_avx2.cpp, which include this header after their `#pragma GCC target`. Nothing
// here instantiates a library template or runs OpenMP: code that other files also instantiate (std::vector, the
// parallel loop) must not be compiled for a wider ISA than theirs, or the linker may keep that copy for all.
//
// Layout: a block of S::kVectors * S::kLanes points goes through one layer at a time, the points across the
// vector lanes, the activations stored unit-major (unit i of the block is S::kVectors vectors). A pass
// computes S::kUnits output units for the whole block: per input unit, the block's input vectors are loaded once
// and each output unit's weight is broadcast once and used for all of them, so the kUnits * kVectors
// accumulators need one load per two FMAs or fewer (the register-blocked inner kernel of a matrix product). Lane p
// of the accumulator of unit o performs exactly the FMAs of iaf_layer for point p, in the same order, so the result
// has the bits of the scalar path. Input units that are zero in every lane of the block are skipped (exact, see
// iaf.h): a unit whose ReLU is off over the part of score space the block covers costs nothing, and with points
// taken in iaf_locality_order a block covers a small part. The softmax and the weighting run lane-wise with the
// operations of iaf_math.h.
//
// S provides: V (vector of kLanes floats), M (lane mask), kLanes, kVectors (vectors of points per block), kUnits
// (output units per pass); load, store, broadcast, add, sub, mul, div, fma, relu, floor, pow2 (2^n of integral n);
// greater (a > b), at_least (a >= b), is_nan (false on NaN for the first two), select(m, if_false, if_true); and
// nonzero_lanes(v): a bit per lane that is not zero (NaN included).
#pragma once

#include <cstdint>

#include "iaf/iaf.h"
#include "iaf/iaf_math.h"

namespace iaenet {

template <class S>
class IafSimdBlock {
 public:
  static constexpr int kPoints = S::kVectors * S::kLanes;

  // act: 2 * iaf_max_width(net) * kPoints floats, 64-byte aligned (a layer's input and output block).
  IafSimdBlock(const IafNet& net, float* act) : net_(net), act_(act), width_(iaf_max_width(net)) {}

  // The points order[begin .. end) (or begin .. end when order is null), at most kPoints of them.
  void run(const float* scores, const int64_t* order, int64_t begin, int64_t end, float* a, float* s) {
    const int m = static_cast<int>(end - begin);
    int64_t id[kPoints];
    float x[kIafInputs][kPoints];  // the block's scores, unit-major; the lanes past the last point hold zeros
    for (int p = 0; p < kPoints; ++p) {
      id[p] = p < m ? (order != nullptr ? order[begin + p] : begin + p) : -1;
      for (int c = 0; c < kIafInputs; ++c) x[c][p] = p < m ? scores[kIafInputs * id[p] + c] : 0.0f;
    }
    float* in = act_;
    float* other = act_ + width_ * kPoints;
    for (int c = 0; c < kIafInputs; ++c)
      for (int p = 0; p < kPoints; ++p) in[c * kPoints + p] = x[c][p];
    const float* logits = mlp(net_.selector, in, other);
    float* xs = logits == in ? other : in;  // the buffer not holding the logits
    float weights[kIafInputs][kPoints];
    softmax(logits, weights);
    for (int c = 0; c < kIafInputs; ++c)  // iaf_weigh
      for (int v = 0; v < kPoints; v += S::kLanes)
        S::store(xs + c * kPoints + v, S::mul(S::load(x[c] + v), S::load(weights[c] + v)));
    if (s != nullptr)
      for (int p = 0; p < m; ++p)
        for (int c = 0; c < kIafInputs; ++c) s[kIafInputs * id[p] + c] = weights[c][p];
    logits = mlp(net_.predictor, xs, xs == in ? other : in);
    float prob[kIafInputs][kPoints];
    softmax(logits, prob);
    for (int p = 0; p < m; ++p) a[id[p]] = prob[1][p];
  }

 private:
  using V = typename S::V;
  using M = typename S::M;

  // iaf_softmax2 of every point of the block, lane-wise: logits (2 rows of kPoints) -> p (2 rows).
  static void softmax(const float* logits, float (*p)[kPoints]) {
    const V one = S::broadcast(1.0f);
    for (int v = 0; v < kPoints; v += S::kLanes) {
      const V l0 = S::load(logits + v), l1 = S::load(logits + kPoints + v);
      const M second = S::greater(l1, l0);
      const V hi = S::select(second, l0, l1), lo = S::select(second, l1, l0);
      const V e = exp_nonpositive(S::sub(lo, hi));
      const V sum = S::add(one, e);
      const V p_hi = S::div(one, sum), p_lo = S::div(e, sum);
      S::store(p[0] + v, S::select(second, p_hi, p_lo));
      S::store(p[1] + v, S::select(second, p_lo, p_hi));
    }
  }

  // iaf_exp_nonpositive lane-wise: the same constants and operations.
  static V exp_nonpositive(V x) {
    const V n = S::floor(S::fma(x, S::broadcast(kIafLog2e), S::broadcast(0.5f)));
    V r = S::fma(n, S::broadcast(-kIafLn2Head), x);
    r = S::fma(n, S::broadcast(-kIafLn2Tail), r);
    V p = S::broadcast(kIafExpC0);
    p = S::fma(p, r, S::broadcast(kIafExpC1));
    p = S::fma(p, r, S::broadcast(kIafExpC2));
    p = S::fma(p, r, S::broadcast(kIafExpC3));
    p = S::fma(p, r, S::broadcast(kIafExpC4));
    p = S::fma(p, r, S::broadcast(kIafExpC5));
    p = S::add(S::fma(p, S::mul(r, r), r), S::broadcast(1.0f));
    const V e = S::mul(p, S::pow2(n));  // garbage in the lanes below kIafExpMin or NaN, replaced here:
    return S::select(S::at_least(x, S::broadcast(kIafExpMin)), S::select(S::is_nan(x), S::broadcast(0.0f), x), e);
  }

  // Runs the block `x` through `mlp`, ping-ponging between x and y; returns the buffer that holds the logits.
  const float* mlp(const IafMlp& mlp, float* x, float* y) {
    int* live = live_[0];
    int* next = live_[1];
    int n_live = kIafInputs;
    for (int i = 0; i < kIafInputs; ++i) live[i] = i;
    for (int l = 0; l < mlp.layers; ++l) {
      const Layer layer{mlp.weight[l], mlp.bias[l], mlp.width[l], l + 1 < mlp.layers, live, n_live, x, y};
      int n_next = 0;
      for (int o = 0, out = mlp.width[l + 1]; o < out; o += S::kUnits)
        dispatch<S::kUnits>(out - o, layer, o, next, n_next);
      float* const t = x;
      x = y;
      y = t;
      int* const u = live;
      live = next;
      next = u;
      n_live = n_next;
    }
    return x;
  }

  // One layer over the block: w (out, in) and b as torch.nn.Linear holds them; the input units live[0..n_live),
  // ascending, are those not zero in every lane (the others add nothing: fma(w, 0, acc) = acc, up to the sign of
  // a zero, which no output depends on).
  struct Layer {
    const float* w;
    const float* b;
    int in;
    bool relu;
    const int* live;
    int n_live;
    const float* x;
    float* y;
  };

  // units<min(R, left)>.
  template <int R>
  static void dispatch(int left, const Layer& layer, int o, int* live_out, int& n_out) {
    if constexpr (R > 1) {
      if (left < R) return dispatch<R - 1>(left, layer, o, live_out, n_out);
    }
    units<R>(layer, o, live_out, n_out);
  }

  // Output units [o, o + R) of the block; appends those not zero in every lane to live_out. Kept out of line: inlined
  // into the layer loop, GCC spills the accumulators.
  template <int R>
  __attribute__((noinline)) static void units(const Layer& layer, int o, int* live_out, int& n_out) {
    constexpr int L = S::kLanes, B = S::kVectors;
    V acc[R][B];
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < B; ++v) acc[r][v] = S::broadcast(layer.b[o + r]);
    const float* row[R];
    for (int r = 0; r < R; ++r) row[r] = layer.w + static_cast<int64_t>(o + r) * layer.in;
    for (int k = 0; k < layer.n_live; ++k) {
      const int64_t i = layer.live[k];
      const float* x = layer.x + i * kPoints;
      V h[B];
      for (int v = 0; v < B; ++v) h[v] = S::load(x + v * L);
      for (int r = 0; r < R; ++r) {
        const V wv = S::broadcast(row[r][i]);
        for (int v = 0; v < B; ++v) acc[r][v] = S::fma(wv, h[v], acc[r][v]);
      }
    }
    for (int r = 0; r < R; ++r) {
      unsigned nonzero = 0;
      for (int v = 0; v < B; ++v) {
        const V out = layer.relu ? S::relu(acc[r][v]) : acc[r][v];
        S::store(layer.y + (o + r) * kPoints + v * L, out);
        nonzero |= S::nonzero_lanes(out);
      }
      live_out[n_out] = o + r;
      n_out += nonzero != 0;
    }
  }

  const IafNet& net_;
  float* act_;
  int width_;
  int live_[2][kIafMaxWidth];  // a layer's live input units and its live output units
};

}  // namespace iaenet
