// Per-element arithmetic of the point renderer, shared by the CPU and CUDA paths. The numpy reference
// (iaenet/ops/render.py, render_reference) evaluates the same float32 expressions in the same order.
#pragma once

#include <cstdint>
#include <cmath>
#include <cstring>

#include "common/hostdevice.h"

namespace iaenet {

struct RenderCamera {
  float r[9];  // world -> camera rotation, row-major
  float t[3];  // world -> camera translation
  float fx, fy, cx, cy;
};

// The shade is Lambert's law with the light at the eye: albedo * (ambient + diffuse * |cos|), cos being the angle
// between the normal and the direction to the camera. Grey albedo 0.5 as CPMF's paint_uniform_color; ambient and
// diffuse chosen so the shades span Open3D's 0.35 (grazing) .. 0.88 (facing the camera).
constexpr float kRenderAlbedo = 0.5f;
constexpr float kRenderAmbient = 0.7f;
constexpr float kRenderDiffuse = 1.06f;
constexpr float kRenderBackground = 1.0f;
constexpr int64_t kRenderEmptyKey = INT64_MAX;

// Camera coordinates of p: (r0*p0 + r1*p1) + r2*p2 + t, row by row.
IAENET_HD void render_to_camera(const RenderCamera& c, const float* p, float* out) {
  for (int i = 0; i < 3; ++i) out[i] = c.r[3 * i] * p[0] + c.r[3 * i + 1] * p[1] + c.r[3 * i + 2] * p[2] + c.t[i];
}

// Continuous image position of a camera-space point under the pinhole model: x = (fx * px) / pz + cx + 0.5 (and y
// likewise), so that floor(x) is the column of the pixel whose centre is nearest to the projection.
IAENET_HD void render_project(const RenderCamera& c, const float* pc, float* y, float* x) {
  *x = c.fx * pc[0] / pc[2] + c.cx + 0.5f;
  *y = c.fy * pc[1] / pc[2] + c.cy + 0.5f;
}

// floor(v) as an integer for |v| < 2^62 (the caller has bounded v): truncation, corrected for negative fractions.
// Exact like floorf, without a libm call on targets that lack a rounding instruction.
IAENET_HD int64_t render_floor(float v) {
  const int64_t t = static_cast<int64_t>(v);
  return static_cast<float>(t) > v ? t - 1 : t;
}

// Division by a fixed divisor without a division instruction (tens of cycles per point, and none in vector lanes):
// floor(n / d) = (n * magic) >> shift for every 0 <= n < 2^31, with l = ceil(log2 d), shift = 31 + l and
// magic = floor(2^shift / d) + 1 < 2^32 (Granlund & Montgomery 1994, Theorem 4.2 with N = 31: magic * d lies in
// (2^shift, 2^shift + d] and d <= 2^l). All integer: no rounding, and n * magic < 2^63.
struct RenderDivisor {
  uint32_t magic;  // 32 bits, so that n * magic is one widening 32 x 32 -> 64 multiply (also in vector lanes)
  int shift;
  int32_t d;
};

// For 1 <= d < 2^31.
IAENET_HD RenderDivisor render_divisor(int32_t d) {
  int l = 0;
  while ((int64_t{1} << l) < d) ++l;
  const int shift = 31 + l;
  return RenderDivisor{static_cast<uint32_t>(((uint64_t{1} << shift) / static_cast<uint64_t>(d)) + 1), shift, d};
}

// floor(n / divisor.d) for 0 <= n < 2^31.
IAENET_HD int32_t render_divide(int32_t n, const RenderDivisor& divisor) {
  const uint64_t product = static_cast<uint64_t>(static_cast<uint32_t>(n)) * static_cast<uint64_t>(divisor.magic);
  return static_cast<int32_t>(product >> divisor.shift);
}

// Output pixel of sensor-grid row/column g when a grid of g_size cells is shown on out_size pixels: the pixel
// holding the cell's centre, floor((g + 0.5) * out_size / g_size), in exact integer arithmetic.
IAENET_HD int64_t render_grid_to_pixel(int64_t g, int64_t g_size, int64_t out_size) {
  return ((2 * g + 1) * out_size) / (2 * g_size);
}

// The same without a division, for 2 * g_size * out_size <= 2^31; twice_g_size = render_divisor(2 * g_size).
IAENET_HD int32_t render_grid_to_pixel32(int32_t g, const RenderDivisor& twice_g_size, int32_t out_size) {
  return render_divide((2 * g + 1) * out_size, twice_g_size);
}

// Row and column of flat grid index g (0 <= g < 2^31) in a grid `width.d` cells wide.
IAENET_HD void render_grid_split(int32_t g, const RenderDivisor& width, int32_t* row, int32_t* col) {
  *row = render_divide(g, width);
  *col = g - *row * width.d;
}

// floor(v) as a 32-bit integer for |v| < 2^31 (the caller has bounded v), as render_floor.
IAENET_HD int32_t render_floor32(float v) {
  const int32_t t = static_cast<int32_t>(v);
  return static_cast<float>(t) > v ? t - 1 : t;
}

// keep_a ? a : b on the bits. GCC turns the plain conditional around a division or a constant result into a branch,
// which stops the vectoriser (it may not speculate a division under the default -ftrapping-math); a bit mask is a
// selection in every lane.
IAENET_HD float render_select(bool keep_a, float a, float b) {
  uint32_t bits_a, bits_b;
  memcpy(&bits_a, &a, sizeof(bits_a));
  memcpy(&bits_b, &b, sizeof(bits_b));
  const uint32_t mask = 0u - static_cast<uint32_t>(keep_a);
  const uint32_t bits = (bits_a & mask) | (bits_b & ~mask);
  float out;
  memcpy(&out, &bits, sizeof(out));
  return out;
}

// Shade of the point (px, py, pz) with normal (nx, ny, nz) seen by camera c (see kRenderAlbedo). A zero normal
// counts as grazing. Scalar arguments and no branch, so that the CPU can evaluate it over arrays in vector lanes
// (the quotient is computed even when len2 == 0, a NaN that the selection discards). Same value, NaN included, as
// cosine = len2 > 0 ? |dot| / sqrt(len2) : 0; cosine = cosine > 1 ? 1 : cosine.
IAENET_HD float render_shade(const RenderCamera& c, float px, float py, float pz, float nx, float ny, float nz) {
  float pc[3], nc[3];
  for (int i = 0; i < 3; ++i) {
    pc[i] = c.r[3 * i] * px + c.r[3 * i + 1] * py + c.r[3 * i + 2] * pz + c.t[i];
    nc[i] = c.r[3 * i] * nx + c.r[3 * i + 1] * ny + c.r[3 * i + 2] * nz;
  }
  const float dot = nc[0] * pc[0] + nc[1] * pc[1] + nc[2] * pc[2];
  const float len2 = (nc[0] * nc[0] + nc[1] * nc[1] + nc[2] * nc[2]) * (pc[0] * pc[0] + pc[1] * pc[1] + pc[2] * pc[2]);
  const float quotient = fabsf(dot) / sqrtf(len2);
  const float cosine = render_select(len2 > 0.0f, quotient, 0.0f);
  return kRenderAlbedo * (kRenderAmbient + kRenderDiffuse * render_select(cosine > 1.0f, 1.0f, cosine));
}

// Z-buffer key: the bits of a positive finite float order like the float, so (z bits << 32 | index) orders by
// depth and then by index.
IAENET_HD int64_t render_depth_key(float z, int64_t index) {
  uint32_t bits;
  memcpy(&bits, &z, sizeof(bits));
  return (static_cast<int64_t>(bits) << 32) | index;
}

// Whether a point at camera depth z can be drawn: in front of the camera and finite (a NaN fails both tests).
// Here and below `&` rather than `&&`: evaluating every comparison keeps the code branch-free, which lets the CPU
// loops over points run in vector lanes (GCC does not speculate a comparison that may raise an FP exception).
IAENET_HD bool render_visible_depth(float z) { return (z > 0.0f) & (z < 3.0e38f); }

// Whether a splat whose centre pixel is (floor(y), floor(x)) can touch an h x w image: -r <= floor(x) <= w - 1 + r,
// i.e. -r <= x < w + r (and likewise y). NaN fails. Also bounds the values before the float -> int conversion.
IAENET_HD bool render_splat_touches(float y, float x, int64_t radius, int64_t h, int64_t w) {
  const float r = static_cast<float>(radius);
  return (y >= -r) & (x >= -r) & (y < static_cast<float>(h) + r) & (x < static_cast<float>(w) + r);
}

// Half-width of the splat's row dr: r for a square, the largest c with c^2 + dr^2 <= r^2 for a disc.
IAENET_HD int64_t render_splat_half_width(int64_t dr, int64_t radius, bool disc) {
  if (!disc) return radius;
  int64_t c = radius;
  while (c > 0 && c * c + dr * dr > radius * radius) --c;
  return c;
}

// Centre pixel and depth of point i: from its grid index (organized mode, grid != nullptr) or by projection.
// Returns false when the point is not drawn at all (behind the camera, or its splat misses the image). The CUDA
// path's per-point form; the CPU path (render_cpu.cpp) evaluates the same helpers a block of points at a time,
// without branches and, in the organized mode, with RenderDivisor instead of the divisions (same values).
IAENET_HD bool render_point_centre(const RenderCamera& c, const float* points, const int64_t* grid, int64_t grid_h,
                                   int64_t grid_w, int64_t i, int64_t radius, int64_t h, int64_t w, int64_t* row,
                                   int64_t* col, float* z) {
  float pc[3];
  render_to_camera(c, points + 3 * i, pc);
  *z = pc[2];
  if (!render_visible_depth(pc[2])) return false;
  if (grid != nullptr) {
    *row = render_grid_to_pixel(grid[i] / grid_w, grid_h, h);
    *col = render_grid_to_pixel(grid[i] % grid_w, grid_w, w);
    return true;
  }
  float y, x;
  render_project(c, pc, &y, &x);
  if (!render_splat_touches(y, x, radius, h, w)) return false;
  *row = render_floor(y);
  *col = render_floor(x);
  return true;
}

// Offers `key` to every pixel of the h x w z-buffer that the splat centred at pixel (row, col) covers.
template <class StoreMin>
IAENET_HD void render_splat_key(int64_t key, int64_t row, int64_t col, int64_t radius, bool disc, int64_t* zbuf,
                                int64_t h, int64_t w, const StoreMin& store_min) {
  const int64_t r0 = row - radius < 0 ? 0 : row - radius, r1 = row + radius >= h ? h - 1 : row + radius;
  for (int64_t r = r0; r <= r1; ++r) {
    const int64_t half = render_splat_half_width(r - row, radius, disc);
    const int64_t c0 = col - half < 0 ? 0 : col - half, c1 = col + half >= w ? w - 1 : col + half;
    for (int64_t cc = c0; cc <= c1; ++cc) store_min(zbuf + r * w + cc, key);
  }
}

// Records point i's centre pixel in pixels[2i], pixels[2i+1] ((-1, -1) when it is not drawn or off the image)
// and offers its z-buffer key to every pixel its splat covers through `store_min(slot, key)`: a plain or atomic
// minimum, the only part in which the CPU and CUDA paths differ.
template <class StoreMin>
IAENET_HD void render_splat_point(const RenderCamera& c, const float* points, const int64_t* grid, int64_t grid_h,
                                  int64_t grid_w, int64_t i, int64_t radius, bool disc, int64_t* zbuf,
                                  int32_t* pixels, int64_t h, int64_t w, const StoreMin& store_min) {
  int64_t row = -1, col = -1;
  float z;
  const bool drawn = render_point_centre(c, points, grid, grid_h, grid_w, i, radius, h, w, &row, &col, &z);
  const bool inside = drawn && row >= 0 && row < h && col >= 0 && col < w;
  pixels[2 * i] = inside ? static_cast<int32_t>(row) : -1;
  pixels[2 * i + 1] = inside ? static_cast<int32_t>(col) : -1;
  if (drawn) render_splat_key(render_depth_key(z, i), row, col, radius, disc, zbuf, h, w, store_min);
}

// The value of one image pixel from its z-buffer key: the background, or the shade of the point that won it.
IAENET_HD float render_pixel(const RenderCamera& c, const float* points, const float* normals, int64_t key) {
  if (key == kRenderEmptyKey) return kRenderBackground;
  const int64_t i = key & 0xffffffffLL;
  const float* p = points + 3 * i;
  const float* n = normals + 3 * i;
  return render_shade(c, p[0], p[1], p[2], n[0], n[1], n[2]);
}

}  // namespace iaenet
