// The CPU renderer's last pass: the image from the z-buffer keys.
#pragma once

#include <cstdint>

#include "render/render_math.h"

namespace iaenet {

// image[p] = render_pixel(camera, points, normals, zbuf[p]) for p < size: the background where zbuf[p] is empty,
// else the shade of point zbuf[p] & 0xffffffff. Same bits as render_pixel; parallel splits the pixels over
// OpenMP threads.
void render_shade_image(const RenderCamera& camera, const float* points, const float* normals, const int64_t* zbuf,
                        int64_t size, float* image, bool parallel);

}  // namespace iaenet
