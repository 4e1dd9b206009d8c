#include "common/cpu_isa.h"
#include "render/render_shade_cpu.h"

#include <algorithm>

namespace iaenet {
namespace {

// Pixels per chunk: the winners' coordinates (7 arrays of this many floats/ints) stay in L1.
constexpr int64_t kChunk = 512;

// The winners of one chunk, gathered into arrays (structure of arrays) so that the shading loop runs in vector
// lanes: the point index per winner is random, the arithmetic per winner is the same.
struct Winners {
  float px[kChunk], py[kChunk], pz[kChunk], nx[kChunk], ny[kChunk], nz[kChunk], shade[kChunk];
  int64_t pixel[kChunk];
};

// shade[j] = render_shade(camera, winner j) for j < count. Compiled for AVX2 and the baseline ISA, picked at run
// time. Not for AVX-512: GCC's -mavx512f also enables FMA, and contracting a * b + c changes the bits (AVX2 alone
// does not enable it).
#define IAENET_SHADE_WINNERS_BODY                                                                              \
  for (int64_t j = 0; j < count; ++j)                                                                          \
    w.shade[j] = render_shade(camera, w.px[j], w.py[j], w.pz[j], w.nx[j], w.ny[j], w.nz[j]);

__attribute__((target("avx2"))) void shade_winners_avx2(const RenderCamera& camera, int64_t count, Winners& w) {
  IAENET_SHADE_WINNERS_BODY
}

void shade_winners_portable(const RenderCamera& camera, int64_t count, Winners& w) { IAENET_SHADE_WINNERS_BODY }
#undef IAENET_SHADE_WINNERS_BODY

using ShadeWinnersFn = void (*)(const RenderCamera&, int64_t, Winners&);

ShadeWinnersFn pick_shade_winners() {
  return cpu_has(CpuIsa::Avx2) ? shade_winners_avx2 : shade_winners_portable;
}

// Pixels [begin, end), end - begin <= kChunk: background written at once, winners gathered, shaded, scattered.
void shade_chunk(const RenderCamera& camera, const float* points, const float* normals, const int64_t* zbuf,
                 int64_t begin, int64_t end, float* image, Winners& w, ShadeWinnersFn shade_winners) {
  int64_t count = 0;
  for (int64_t p = begin; p < end; ++p) {
    const int64_t key = zbuf[p];
    if (key == kRenderEmptyKey) {
      image[p] = kRenderBackground;
      continue;
    }
    const int64_t i = key & 0xffffffffLL;
    const float* pt = points + 3 * i;
    const float* nr = normals + 3 * i;
    w.px[count] = pt[0];
    w.py[count] = pt[1];
    w.pz[count] = pt[2];
    w.nx[count] = nr[0];
    w.ny[count] = nr[1];
    w.nz[count] = nr[2];
    w.pixel[count++] = p;
  }
  shade_winners(camera, count, w);
  for (int64_t j = 0; j < count; ++j) image[w.pixel[j]] = w.shade[j];
}

}  // namespace

void render_shade_image(const RenderCamera& camera, const float* points, const float* normals, const int64_t* zbuf,
                        int64_t size, float* image, bool parallel) {
  const ShadeWinnersFn shade_winners = pick_shade_winners();
  const int64_t chunks = (size + kChunk - 1) / kChunk;
#ifdef _OPENMP
#pragma omp parallel if (parallel && chunks > 1)
#endif
  {
    Winners w;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
    for (int64_t c = 0; c < chunks; ++c)
      shade_chunk(camera, points, normals, zbuf, c * kChunk, std::min(size, (c + 1) * kChunk), image, w,
                  shade_winners);
  }
}

}  // namespace iaenet
