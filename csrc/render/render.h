// Z-buffered point-splat rendering of a shaded point cloud (the 2D expert's "textured depth" view).
//
// Contract
//   points  : (N, 3) float32, C-contiguous, finite, world coordinates (any unit)
//   normals : (N, 3) float32, C-contiguous, finite; need not be unit length or oriented (only |n.v| is used)
//   camera  : RenderCamera by value: world -> camera rotation r (row-major 3x3) and translation t, pinhole
//             intrinsics fx, fy, cx, cy in pixels (pixel (row, col) has its centre at x = col, y = row)
//   grid    : nullptr for the pinhole mode; otherwise (N,) int64 flat indices into a grid_h x grid_w sensor grid
//             (organized mode: the grid is the frontal view, the camera's intrinsics are unused)
//   zbuf    : (H, W) int64 out: each pixel's winning key (below), kRenderEmptyKey where no point covers it
//   image   : (H, W) float32 out: the shade of the nearest point covering the pixel, 1.0 (white) where none does
//   pixels  : (N, 2) int32 out: each point's centre pixel (row, col), (-1, -1) when it is outside the image or
//             not in front of the camera (camera z <= 0)
// Each point covers the pixels within `radius` of its centre pixel: a (2r+1)^2 square, or a disc
// (dr^2 + dc^2 <= r^2). The nearest camera z wins a pixel; ties go to the lower point index. The winner is
// decided by a minimum over 64-bit keys (z bits << 32 | index), so the result is the same for any order of
// evaluation (OpenMP threads, CUDA atomics). N < 2^31, H, W <= 2^30; organized grids below 2^31 cells with
// 2 * grid side * image side <= 2^31 (the binding checks). The CPU path checks points/normals for NaN/inf and the
// grid indices for range itself (std::invalid_argument, a ValueError in Python); the CUDA path relies on the
// caller. Memory: the caller's buffers; the CPU path adds an (H + 2r) x (W + 2r) int64 centre buffer when it draws
// by minimum filter (render_filter.h) and a few small blocks.
// Shading: render_math.h, render_shade.
#pragma once

#include <cstdint>

#include "render/render_math.h"

namespace iaenet {

void render_cpu(const float* points, const float* normals, int64_t n, const RenderCamera& camera, const int64_t* grid,
                int64_t grid_h, int64_t grid_w, int64_t radius, bool disc, int64_t* zbuf, float* image,
                int32_t* pixels, int64_t h, int64_t w);
#ifdef IAENET_WITH_CUDA
void render_cuda(const float* points, const float* normals, int64_t n, const RenderCamera& camera,
                 const int64_t* grid, int64_t grid_h, int64_t grid_w, int64_t radius, bool disc, int64_t* zbuf,
                 float* image, int32_t* pixels, int64_t h, int64_t w, std::intptr_t stream);
#endif

}  // namespace iaenet
