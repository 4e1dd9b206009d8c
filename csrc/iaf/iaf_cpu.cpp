#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/cpu_isa.h"
#include "common/parallel.h"
#include "iaf/iaf.h"
#include "iaf/iaf_cpu_blocks.h"
#include "iaf/iaf_math.h"

namespace iaenet {
namespace {

// Multiply-adds (of the full networks) below which one thread runs the call, where waking the team costs more than
// the second core gives: ~0.5 ms of the SIMD kernels (~3500 points of the paper's width-64 networks), ~1 ms of
// the scalar path.
constexpr double kParallelSimdWork = 6.0e7;
constexpr double kParallelScalarWork = 2.0e6;

#ifdef IAENET_IAF_X86
using IafBlockFn = void (*)(const IafNet&, const float*, const int64_t*, int64_t, int64_t, float*, float*, float*);

constexpr int kCacheLine = 64;
constexpr int64_t kOrderedBlocks = 4;  // below, ordering costs more than the skipped units save

// Blocks of `points` points through `block`, OpenMP over blocks when `parallel`; each thread owns its working memory.
// From a few blocks on, the points go in iaf_locality_order.
void run_blocks(IafBlockFn block, int64_t points, const IafNet& net, const float* scores, int64_t n, float* a,
                float* s, bool parallel) {
  const int64_t blocks = (n + points - 1) / points;
  const std::vector<int64_t> order =
      blocks >= kOrderedBlocks ? iaf_locality_order(scores, n, points) : std::vector<int64_t>();
  const int64_t* by = order.empty() ? nullptr : order.data();
#ifdef _OPENMP
#pragma omp parallel if (parallel && blocks > 1)
#endif
  {
    const size_t floats = 2 * static_cast<size_t>(iaf_max_width(net)) * points;
    std::vector<float> memory(floats + kCacheLine / sizeof(float));
    const auto address = reinterpret_cast<std::uintptr_t>(memory.data());
    float* act = memory.data() + (kCacheLine - address % kCacheLine) % kCacheLine / sizeof(float);
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 4)
#endif
    for (int64_t b = 0; b < blocks; ++b) block(net, scores, by, b * points, std::min(n, (b + 1) * points), a, s, act);
  }
  (void)parallel;
}
#endif

}  // namespace

void iaf_forward_cpu(const IafNet& net, const float* scores, int64_t n, float* a, float* s) {
  if (n == 0) return;
  const double work = static_cast<double>(n) * static_cast<double>(iaf_macs(net.selector) + iaf_macs(net.predictor));
#ifdef IAENET_IAF_X86
  const bool parallel_simd = work >= kParallelSimdWork;
  if (cpu_has(CpuIsa::Avx512))
    return run_blocks(iaf_block_avx512, kIafAvx512Block, net, scores, n, a, s, parallel_simd);
  if (cpu_has(CpuIsa::Avx2)) return run_blocks(iaf_block_avx2, kIafAvx2Block, net, scores, n, a, s, parallel_simd);
#endif
  parallel_for(
      n,
      [&](int64_t i) {
        float scratch[2 * kIafMaxWidth];
        iaf_point(net, scores + 2 * i, a + i, s == nullptr ? nullptr : s + 2 * i, scratch);
      },
      64, work >= kParallelScalarWork);
}

}  // namespace iaenet
