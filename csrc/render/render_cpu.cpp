#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "common/cpu_isa.h"
#include "render/render.h"
#include "render/render_filter.h"
#include "render/render_shade_cpu.h"

namespace iaenet {
namespace {

// Below these sizes a loop runs on one thread: a 224x224 view takes a fraction of a millisecond, and waking an
// OpenMP team costs 10-50 us (much more when other processes hold the cores).
constexpr int64_t kParallelPoints = int64_t{1} << 20;
constexpr int64_t kParallelPixels = int64_t{1} << 20;

// Points are located a block at a time (vectorised: no branch, no store the next point could depend on), then
// their keys are stored one by one.
constexpr int64_t kBlock = 512;

// One block of points. The float stage (`project`) writes the camera depth z and, for the pinhole mode, the
// continuous image position (y, x); the integer stage (`locate`) the centre pixel and the key: kRenderEmptyKey for a
// point that is not drawn (its row/col then point at a harmless pixel: the empty key never lowers a minimum).
// Two stages so that the integer one may use AVX-512 (native 64-bit minima, multiplies and conversions) while
// the float arithmetic never does: GCC's -mavx512f also enables FMA, and contracting a * b + c would change the
// depths' bits (AVX2 alone does not enable FMA).
struct Located {
  float y[kBlock], x[kBlock], z[kBlock];
  int32_t row[kBlock], col[kBlock];
  int64_t key[kBlock];
};

// Centre pixels in the organized mode: grid index -> grid row/column -> output row/column, all by multiplications
// (render_math.h, RenderDivisor; exact for the sizes the binding admits) instead of divisions per point.
class GridCentres {
 public:
  GridCentres(const int64_t* grid, int64_t grid_h, int64_t grid_w, int64_t h, int64_t w, int64_t radius)
      : grid_(grid), cells_(static_cast<uint64_t>(grid_h * grid_w)), h_(static_cast<int32_t>(h)),
        w_(static_cast<int32_t>(w)), parked_(static_cast<int32_t>(-radius)),
        width_(render_divisor(static_cast<int32_t>(grid_w))),
        twice_grid_h_(render_divisor(static_cast<int32_t>(2 * grid_h))),
        twice_grid_w_(render_divisor(static_cast<int32_t>(2 * grid_w))) {}

  // Depths of points [begin, end) into out.z (index i - begin).
  __attribute__((always_inline)) void project(const RenderCamera& c, const float* points, int64_t begin,
                                              int64_t end, Located& out) const {
    const RenderCamera cam = c;  // a local: as far as the compiler knows, the stores could alias the camera
    for (int64_t i = begin; i < end; ++i) {
      float pc[3];
      render_to_camera(cam, points + 3 * i, pc);
      out.z[i - begin] = pc[2];
    }
  }

  // Centre pixels and keys of points [begin, end) from out.z into out and pixels; returns how many have a grid
  // index out of range (they are not drawn). The grid cell always lies inside the image.
  __attribute__((always_inline)) int64_t locate(int64_t begin, int64_t end, Located& out, int32_t* pixels) const {
    // Locals: as far as the compiler knows, the stores below could alias *this.
    const int64_t* grid = grid_;
    const uint64_t cells = cells_;
    const int32_t h = h_, w = w_, parked = parked_;
    const RenderDivisor width = width_, twice_grid_h = twice_grid_h_, twice_grid_w = twice_grid_w_;
    int64_t invalid = 0;
    for (int64_t i = begin; i < end; ++i) {
      const float z = out.z[i - begin];
      const int64_t g = grid[i];
      const bool valid = static_cast<uint64_t>(g) < cells;
      // An invalid index is located as the last cell: a minimum, not a conditional on `valid`, which GCC would
      // turn into a branch (and then not vectorise the loop).
      const uint64_t cell = std::min(static_cast<uint64_t>(g), cells - 1);
      int32_t grid_row, grid_col;
      render_grid_split(static_cast<int32_t>(cell), width, &grid_row, &grid_col);
      const int32_t row = render_grid_to_pixel32(grid_row, twice_grid_h, h);
      const int32_t col = render_grid_to_pixel32(grid_col, twice_grid_w, w);
      const bool drawn = valid & render_visible_depth(z);
      pixels[2 * i] = drawn ? row : -1;
      pixels[2 * i + 1] = drawn ? col : -1;
      out.row[i - begin] = drawn ? row : parked;
      out.col[i - begin] = drawn ? col : parked;
      out.key[i - begin] = drawn ? render_depth_key(z, i) : kRenderEmptyKey;
      invalid += valid ? 0 : 1;
    }
    return invalid;
  }

  std::string first_invalid(int64_t n) const {
    int64_t i = 0;
    while (i < n && static_cast<uint64_t>(grid_[i]) < cells_) ++i;
    return "grid_index: value " + std::to_string(grid_[i]) + " at position " + std::to_string(i) +
           " is outside [0, " + std::to_string(cells_) + ") for the grid of " +
           std::to_string(cells_ / static_cast<uint64_t>(width_.d)) + " x " + std::to_string(width_.d) + " cells";
  }

 private:
  const int64_t* grid_;
  uint64_t cells_;
  int32_t h_, w_, parked_;
  RenderDivisor width_, twice_grid_h_, twice_grid_w_;
};

// Centre pixels in the pinhole mode: the projection of render_math.h (render_point_centre) without branches.
struct ProjectedCentres {
  int64_t radius, h, w;

  // Depths and continuous image positions of points [begin, end) into out.
  __attribute__((always_inline)) void project(const RenderCamera& c, const float* points, int64_t begin,
                                              int64_t end, Located& out) const {
    const RenderCamera cam = c;  // a local: as far as the compiler knows, the stores could alias the camera
    for (int64_t i = begin; i < end; ++i) {
      float pc[3];
      render_to_camera(cam, points + 3 * i, pc);
      render_project(cam, pc, &out.y[i - begin], &out.x[i - begin]);
      out.z[i - begin] = pc[2];
    }
  }

  // Centre pixels and keys of points [begin, end) from the projection in out into out and pixels.
  __attribute__((always_inline)) int64_t locate(int64_t begin, int64_t end, Located& out, int32_t* pixels) const {
    const int32_t parked = static_cast<int32_t>(-radius);
    for (int64_t i = begin; i < end; ++i) {
      const float y = out.y[i - begin], x = out.x[i - begin], z = out.z[i - begin];
      const bool drawn = render_visible_depth(z) & render_splat_touches(y, x, radius, h, w);
      // the splat test bounds y and x, so the conversion is exact where it counts
      const int32_t row = render_floor32(render_select(drawn, y, 0.0f));
      const int32_t col = render_floor32(render_select(drawn, x, 0.0f));
      const bool inside = drawn & (row >= 0) & (row < h) & (col >= 0) & (col < w);
      pixels[2 * i] = inside ? row : -1;
      pixels[2 * i + 1] = inside ? col : -1;
      out.row[i - begin] = drawn ? row : parked;
      out.col[i - begin] = drawn ? col : parked;
      out.key[i - begin] = drawn ? render_depth_key(z, i) : kRenderEmptyKey;
    }
    return 0;
  }

  std::string first_invalid(int64_t) const { return {}; }
};

// The two stages compiled per instruction set, picked at run time: the float stage for AVX2 or the baseline ISA
// (never AVX-512, see Located), the integer stage also for AVX-512.
template <class Centres>
__attribute__((target("avx2"))) void project_avx2(const Centres& centres, const RenderCamera& c, const float* points,
                                                  int64_t begin, int64_t end, Located& out) {
  centres.project(c, points, begin, end, out);
}

template <class Centres>
void project_portable(const Centres& centres, const RenderCamera& c, const float* points, int64_t begin, int64_t end,
                      Located& out) {
  centres.project(c, points, begin, end, out);
}

template <class Centres>
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw"))) int64_t locate_avx512(const Centres& centres,
                                                                                    int64_t begin, int64_t end,
                                                                                    Located& out, int32_t* pixels) {
  return centres.locate(begin, end, out, pixels);
}

template <class Centres>
__attribute__((target("avx2"))) int64_t locate_avx2(const Centres& centres, int64_t begin, int64_t end, Located& out,
                                                    int32_t* pixels) {
  return centres.locate(begin, end, out, pixels);
}

template <class Centres>
int64_t locate_portable(const Centres& centres, int64_t begin, int64_t end, Located& out, int32_t* pixels) {
  return centres.locate(begin, end, out, pixels);
}

template <class Centres>
struct Stages {
  decltype(&project_portable<Centres>) project;
  decltype(&locate_portable<Centres>) locate;

  static Stages pick() {
    const bool avx2 = cpu_has(CpuIsa::Avx2), avx512 = cpu_has(CpuIsa::Avx512);
    return {avx2 ? project_avx2<Centres> : project_portable<Centres>,
            avx512 ? locate_avx512<Centres> : avx2 ? locate_avx2<Centres> : locate_portable<Centres>};
  }
};

// Lock-free z-buffer minimum for several threads: the keys are unique per point, so the final value does not
// depend on thread order.
struct AtomicMinKey {
  void operator()(int64_t* slot, int64_t key) const {
    int64_t seen = __atomic_load_n(slot, __ATOMIC_RELAXED);
    while (key < seen && !__atomic_compare_exchange_n(slot, &seen, key, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
  }
};

// Branch-free: whether a later point is nearer is a coin toss, and a mispredicted branch costs more than the store.
struct PlainMinKey {
  void operator()(int64_t* slot, int64_t key) const {
    const int64_t seen = *slot;
    *slot = key < seen ? key : seen;
  }
};

// Whether to store each point's key at its centre pixel only (then, for radius > 0, the padded centre buffer is
// minimum-filtered into the z-buffer: render_filter.h) rather than splat it over every covered pixel. The filter
// costs a few vectorised minima per pixel and splat row, the direct splat one scalar minimum per point and covered
// pixel, so the filter pays unless the cloud is sparse for the image. With radius 0 the centre is the splat.
bool by_centre(int64_t n, int64_t radius, int64_t h, int64_t w) {
  if (radius == 0) return true;
  const int64_t padded = (h + 2 * radius) * (w + 2 * radius);
  return 2 * n * (2 * radius + 1) >= padded;
}

// Offers the keys of one located block: to the (padded) centre buffer, or to every covered pixel.
template <class StoreMin>
void store_block(const Located& located, int64_t count, int64_t radius, bool disc, bool centre, int64_t* target,
                 int64_t h, int64_t w, const StoreMin& store_min) {
  if (centre) {
    const int64_t padded_w = w + 2 * radius;
    for (int64_t j = 0; j < count; ++j)
      store_min(target + (located.row[j] + radius) * padded_w + located.col[j] + radius, located.key[j]);
  } else {
    for (int64_t j = 0; j < count; ++j)
      if (located.key[j] != kRenderEmptyKey)
        render_splat_key(located.key[j], located.row[j], located.col[j], radius, disc, target, h, w, store_min);
  }
}

// All points: their centre pixels into `pixels`, their keys into `target`. Throws when a grid index is out of range.
template <class Centres>
void draw(const Centres& centres, const RenderCamera& camera, const float* points, int64_t n, int64_t radius,
          bool disc, bool centre, int64_t* target, int32_t* pixels, int64_t h, int64_t w) {
  const Stages<Centres> stages = Stages<Centres>::pick();
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  const bool parallel = n >= kParallelPoints;
  int64_t invalid = 0;
#ifdef _OPENMP
#pragma omp parallel if (parallel) reduction(+ : invalid)
#endif
  {
    std::unique_ptr<Located> located(new Located);
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t begin = b * kBlock, end = std::min(n, begin + kBlock);
      stages.project(centres, camera, points, begin, end, *located);
      invalid += stages.locate(centres, begin, end, *located, pixels);
      if (parallel) {
        store_block(*located, end - begin, radius, disc, centre, target, h, w, AtomicMinKey());
      } else {
        store_block(*located, end - begin, radius, disc, centre, target, h, w, PlainMinKey());
      }
    }
  }
  if (invalid > 0) throw std::invalid_argument("render: " + centres.first_invalid(n));
}

// The largest exponent field in values[0 .. count): 0x7f800000 (all ones) exactly when one of them is NaN or inf.
// A max reduction over 32-bit lanes, compiled for AVX2 and the baseline ISA.
#define IAENET_EXPONENT_MAX_BODY                      \
  uint32_t largest = 0;                               \
  for (int64_t k = 0; k < count; ++k) {               \
    uint32_t bits;                                    \
    memcpy(&bits, values + k, sizeof(bits));          \
    const uint32_t exponent = bits & 0x7f800000u;     \
    largest = exponent > largest ? exponent : largest; \
  }                                                   \
  return largest;

__attribute__((target("avx2"))) uint32_t exponent_max_avx2(const float* values, int64_t count) {
  IAENET_EXPONENT_MAX_BODY
}

uint32_t exponent_max_portable(const float* values, int64_t count) { IAENET_EXPONENT_MAX_BODY }
#undef IAENET_EXPONENT_MAX_BODY

// Throws when values[0 .. count) holds a NaN or an infinity, naming the array and the (row, column) of the first.
void check_finite(const float* values, int64_t count, const char* name) {
  const auto exponent_max = cpu_has(CpuIsa::Avx2) ? exponent_max_avx2 : exponent_max_portable;
  if (exponent_max(values, count) != 0x7f800000u) return;
  int64_t k = 0;
  while (std::isfinite(values[k])) ++k;
  throw std::invalid_argument(std::string(name) + ": contains NaN or inf (first at index (" + std::to_string(k / 3) +
                              ", " + std::to_string(k % 3) + "))");
}

void fill(int64_t* buffer, int64_t size, int64_t value) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (size >= kParallelPixels)
#endif
  for (int64_t p = 0; p < size; ++p) buffer[p] = value;
}

}  // namespace

void render_cpu(const float* points, const float* normals, int64_t n, const RenderCamera& camera, const int64_t* grid,
                int64_t grid_h, int64_t grid_w, int64_t radius, bool disc, int64_t* zbuf, float* image,
                int32_t* pixels, int64_t h, int64_t w) {
  check_finite(points, 3 * n, "points");
  check_finite(normals, 3 * n, "normals");
  const int64_t size = h * w;
  const bool centre = by_centre(n, radius, h, w);
  const bool filter = centre && radius > 0;
  std::unique_ptr<int64_t[]> centre_keys;
  int64_t* target = zbuf;
  if (filter) {
    const int64_t padded = (h + 2 * radius) * (w + 2 * radius);
    centre_keys.reset(new int64_t[padded]);
    target = centre_keys.get();
    fill(target, padded, kRenderEmptyKey);
  } else {
    fill(zbuf, size, kRenderEmptyKey);
  }
  if (grid != nullptr) {
    draw(GridCentres(grid, grid_h, grid_w, h, w, radius), camera, points, n, radius, disc, centre, target, pixels, h,
         w);
  } else {
    draw(ProjectedCentres{radius, h, w}, camera, points, n, radius, disc, centre, target, pixels, h, w);
  }
  if (filter) render_splat_filter(target, h, w, radius, disc, zbuf, size * (2 * radius + 1) >= kParallelPixels);
  render_shade_image(camera, points, normals, zbuf, size, image, size >= kParallelPixels);
}

}  // namespace iaenet
