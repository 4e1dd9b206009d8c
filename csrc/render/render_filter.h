// Splatting as a minimum filter: the CPU renderer's way of drawing (2r+1)^2 squares or discs without touching
// every covered pixel once per point.
//
// Why it gives the same z-buffer as splatting each point: a point whose centre pixel is (cy, cx) covers (y, x)
// exactly when (y - cy, x - cx) is a splat offset (|dy| <= r and |dx| <= half_width(dy)). So the key a pixel ends
// with, the minimum over the points covering it, is the minimum over the splat offsets (dy, dx) of the minimum over
// the points centred at (y - dy, x - dx): a minimum filter, with the splat as its window, of the "centre" buffer
// that holds at each pixel the smallest key of the points centred there. The minimum is associative and
// commutative and the keys are unique, so grouping the points this way changes nothing. Centres up to r pixels
// outside the image still cover pixels inside it, hence the padding of r on every side.
//
// The window is separable: row offset dy contributes the horizontal minimum of half width half_width(dy) of row
// y - dy. A square has one half width (r); a disc has at most r + 1 distinct ones.
#pragma once

#include <cstdint>

namespace iaenet {

// centres : (h + 2r) x (w + 2r) int64 keys, centres[(y + r) * (w + 2r) + x + r] = smallest key centred at pixel
//           (y, x) (y in -r .. h-1+r, likewise x), kRenderEmptyKey where none
// zbuf    : (h, w) int64 out, zbuf[y * w + x] = min over the splat offsets (dy, dx) of the centre key at (y-dy, x-dx)
// disc    : disc splat (dy^2 + dx^2 <= r^2) instead of the (2r+1)^2 square
// parallel: split the rows over OpenMP threads (the result does not depend on it)
// Memory: (2r + 1 + 64) rows of w int64 per distinct half width and thread (a band of 64 output rows at a time).
void render_splat_filter(const int64_t* centres, int64_t h, int64_t w, int64_t radius, bool disc, int64_t* zbuf,
                         bool parallel);

}  // namespace iaenet
