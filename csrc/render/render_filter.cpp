#include "common/cpu_isa.h"
#include "render/render_filter.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "render/render_math.h"

namespace iaenet {
namespace {

constexpr int64_t kBandRows = 64;  // output rows per band: the band's horizontal minima stay in L2

// The splat's rows: the distinct half widths, ascending, and for each row offset dy = -r..r the index of its own.
struct SplatRows {
  std::vector<int64_t> half_widths;
  std::vector<int64_t> width_of_row;  // 2r + 1 entries, row offset dy at [dy + r]

  SplatRows(int64_t radius, bool disc) {
    for (int64_t dy = -radius; dy <= radius; ++dy) {
      const int64_t half = render_splat_half_width(dy, radius, disc);
      auto at = std::find(half_widths.begin(), half_widths.end(), half);
      if (at == half_widths.end()) at = half_widths.insert(half_widths.end(), half);
      width_of_row.push_back(at - half_widths.begin());
    }
  }
};

// The loops below are plain elementwise minima over int64 that the compiler vectorises; they are compiled for
// AVX-512 (vpminsq), AVX2 (compare + blend) and the baseline ISA, picked at run time. Integer minima give the same
// result in every variant.
#define IAENET_ALWAYS_INLINE inline __attribute__((always_inline))

// out[x] = min(src[x + first .. x + last]) for x < count.
IAENET_ALWAYS_INLINE void window_min(const int64_t* __restrict__ src, int64_t first, int64_t last, int64_t count,
                                     int64_t* __restrict__ out) {
  for (int64_t x = 0; x < count; ++x) out[x] = src[x + first];
  for (int64_t k = first + 1; k <= last; ++k)
    for (int64_t x = 0; x < count; ++x) out[x] = src[x + k] < out[x] ? src[x + k] : out[x];
}

// out[x] = min(out[x], src[x]) for x < count.
IAENET_ALWAYS_INLINE void min_into(const int64_t* __restrict__ src, int64_t count, int64_t* __restrict__ out) {
  for (int64_t x = 0; x < count; ++x) out[x] = src[x] < out[x] ? src[x] : out[x];
}

// Output rows [y0, y1): first the horizontal minima of padded rows y0 .. y1 - 1 + 2r (padded row p holds image row
// p - r) for every half width, then per output row the minimum over the 2r + 1 rows above and below.
// band: half_widths.size() planes of (kBandRows + 2r) x w.
IAENET_ALWAYS_INLINE void filter_band(const int64_t* centres, int64_t w, int64_t radius, const SplatRows& rows,
                                      int64_t y0, int64_t y1, int64_t* zbuf, int64_t* band) {
  const int64_t padded_w = w + 2 * radius, band_rows = y1 - y0 + 2 * radius;
  const int64_t plane = (kBandRows + 2 * radius) * w;
  for (size_t j = 0; j < rows.half_widths.size(); ++j) {
    const int64_t half = rows.half_widths[j];
    for (int64_t b = 0; b < band_rows; ++b)
      window_min(centres + (y0 + b) * padded_w, radius - half, radius + half, w, band + j * plane + b * w);
  }
  for (int64_t y = y0; y < y1; ++y) {
    int64_t* out = zbuf + y * w;
    // Row offset dy reads padded row y + r - dy, i.e. band row (y - y0) + 2r - (dy + r).
    for (int64_t k = 0; k <= 2 * radius; ++k) {
      const int64_t* src = band + rows.width_of_row[k] * plane + (y - y0 + 2 * radius - k) * w;
      if (k == 0) {
        std::copy(src, src + w, out);
      } else {
        min_into(src, w, out);
      }
    }
  }
}

using FilterBandFn = void (*)(const int64_t*, int64_t, int64_t, const SplatRows&, int64_t, int64_t, int64_t*,
                              int64_t*);

__attribute__((target("avx512f,avx512vl"))) void filter_band_avx512(const int64_t* centres, int64_t w,
                                                                     int64_t radius, const SplatRows& rows, int64_t y0,
                                                                     int64_t y1, int64_t* zbuf, int64_t* band) {
  filter_band(centres, w, radius, rows, y0, y1, zbuf, band);
}

__attribute__((target("avx2"))) void filter_band_avx2(const int64_t* centres, int64_t w, int64_t radius,
                                                      const SplatRows& rows, int64_t y0, int64_t y1, int64_t* zbuf,
                                                      int64_t* band) {
  filter_band(centres, w, radius, rows, y0, y1, zbuf, band);
}

void filter_band_portable(const int64_t* centres, int64_t w, int64_t radius, const SplatRows& rows, int64_t y0,
                          int64_t y1, int64_t* zbuf, int64_t* band) {
  filter_band(centres, w, radius, rows, y0, y1, zbuf, band);
}

FilterBandFn pick_filter_band() {
  if (cpu_has(CpuIsa::Avx512)) return filter_band_avx512;
  if (cpu_has(CpuIsa::Avx2)) return filter_band_avx2;
  return filter_band_portable;
}

}  // namespace

void render_splat_filter(const int64_t* centres, int64_t h, int64_t w, int64_t radius, bool disc, int64_t* zbuf,
                         bool parallel) {
  const FilterBandFn filter_band_fn = pick_filter_band();
  const SplatRows rows(radius, disc);
  const int64_t band_size = static_cast<int64_t>(rows.half_widths.size()) * (kBandRows + 2 * radius) * w;
  const int64_t bands = (h + kBandRows - 1) / kBandRows;
#ifdef _OPENMP
#pragma omp parallel if (parallel && bands > 1)
#endif
  {
    std::unique_ptr<int64_t[]> band(new int64_t[band_size]);  // every entry is written before it is read
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
    for (int64_t b = 0; b < bands; ++b)
      filter_band_fn(centres, w, radius, rows, b * kBandRows, std::min(h, (b + 1) * kBandRows), zbuf, band.get());
  }
}

}  // namespace iaenet
