// Fused Importance-Aware Fusion (IAF) inference: per point, the selector MLP, its softmax S, the weighted input
// x * S, the predictor MLP and its softmax; A = p(anomaly).
//
// Contract
//   scores    : (N, 2) float32, C-contiguous                       x = [x1, x2], the experts' normalised scores
//   selector  : 1..kIafMaxLayers Linear layers 2 -> w1 -> .. -> 2  weight (out, in) and bias (out,) float32,
//   predictor : 1..kIafMaxLayers Linear layers 2 -> .. -> 2        C-contiguous (torch.nn.Linear's layout); hidden
//                                                                  widths 1..kIafMaxWidth; ReLU after all but the last
//   a         : (N,) float32 written in place                      A = softmax(predictor(x * S))[1]
//   s         : (N, 2) float32 written in place, or null           S = softmax(selector(x))
// Arithmetic (iaf_math.h, shared by every path): each unit accumulates bias + sum_i w[o][i] h[i] in input order,
// one FMA per term; ReLU is (v < 0 ? 0 : v); the softmax subtracts the larger logit and uses the header's own exp.
// The CPU SIMD variants run the same operations per point (lane), and skip an input unit only where it is zero for
// every point of the block, which is exact: fma(w, 0, acc) = acc up to the sign of a zero, which no output depends
// on. So every CPU variant and the CUDA path give the same bits, whatever the order of the points. Non-finite
// results arise only when the networks overflow float32 (or from NaN/inf scores); the Python layer reports them.
// Memory: CPU, per thread two activation blocks (2 * widest layer * 64 floats) and, from 4 blocks of points on,
// a processing order (N int64); CUDA, the weights staged in shared memory when they fit, 2 * kIafMaxWidth floats
// of scratch per thread.
#pragma once

#include <cstdint>
#include <initializer_list>

namespace iaenet {

constexpr int kIafMaxLayers = 8;    // Linear layers per network
constexpr int kIafMaxWidth = 256;   // units per layer
constexpr int kIafInputs = 2;       // per point: the two experts' scores; both networks end in 2 logits

// One MLP as raw pointers; width[l] -> width[l + 1] is layer l, width[0] = width[layers] = kIafInputs.
struct IafMlp {
  int layers = 0;
  int width[kIafMaxLayers + 1] = {};
  const float* weight[kIafMaxLayers] = {};  // (width[l + 1], width[l]) row-major
  const float* bias[kIafMaxLayers] = {};    // (width[l + 1],)
};

struct IafNet {
  IafMlp selector, predictor;
};

// Multiply-adds per point of one network, for work estimates.
inline int64_t iaf_macs(const IafMlp& mlp) {
  int64_t macs = 0;
  for (int l = 0; l < mlp.layers; ++l) macs += static_cast<int64_t>(mlp.width[l]) * mlp.width[l + 1];
  return macs;
}

// The widest layer of both networks (kIafInputs at least): the rows of the activation blocks.
inline int iaf_max_width(const IafNet& net) {
  int width = kIafInputs;
  for (const IafMlp* mlp : {&net.selector, &net.predictor})
    for (int l = 1; l < mlp->layers; ++l) width = width < mlp->width[l] ? mlp->width[l] : width;
  return width;
}

void iaf_forward_cpu(const IafNet& net, const float* scores, int64_t n, float* a, float* s);
#ifdef IAENET_WITH_CUDA
void iaf_forward_cuda(const IafNet& net, const float* scores, int64_t n, float* a, float* s, std::intptr_t stream);
#endif

}  // namespace iaenet
