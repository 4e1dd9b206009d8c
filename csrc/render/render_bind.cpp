#include <pybind11/stl.h>

#include <array>

#include "common/array.h"
#include "common/cuda_support.h"
#include "render/render.h"

namespace iaenet {

void bind_render(py::module_& m) {
  m.def(
      "render",
      [](py::handle points_obj, py::handle normals_obj, py::handle grid_obj, const std::array<float, 16>& camera_values,
         int64_t grid_h, int64_t grid_w, int64_t radius, bool disc, py::handle zbuf_obj, py::handle image_obj,
         py::handle pixels_obj, std::intptr_t stream) {
        ArrayView points = view_array(points_obj, "points", stream);
        ArrayView normals = view_array(normals_obj, "normals", stream);
        ArrayView zbuf = view_array(zbuf_obj, "zbuf", stream);
        ArrayView image = view_array(image_obj, "image", stream);
        ArrayView pixels = view_array(pixels_obj, "pixels", stream);
        points.expect_dtype(DType::Float32).expect_shape({-1, 3}).expect_contiguous();
        const int64_t n = points.dim(0);
        normals.expect_dtype(DType::Float32).expect_shape({n, 3}).expect_contiguous();
        image.expect_dtype(DType::Float32).expect_shape({-1, -1}).expect_contiguous().expect_writable();
        const int64_t h = image.dim(0), w = image.dim(1);
        zbuf.expect_dtype(DType::Int64).expect_shape({h, w}).expect_contiguous().expect_writable();
        pixels.expect_dtype(DType::Int32).expect_shape({n, 2}).expect_contiguous().expect_writable();
        if (n >= (int64_t{1} << 31)) throw py::value_error("render: at most 2^31 - 1 points, got " + std::to_string(n));
        if (h < 1 || w < 1 || h > (int64_t{1} << 30) || w > (int64_t{1} << 30))
          throw py::value_error("render: image sides must be in 1..2^30, got " + std::to_string(h) + " x " +
                                std::to_string(w));
        if (radius < 0 || radius > 64) throw py::value_error("render: radius must be in 0..64, got " + std::to_string(radius));
        ArrayView grid;
        const bool organized = !grid_obj.is_none();
        if (organized) {
          grid = view_array(grid_obj, "grid_index", stream);
          grid.expect_dtype(DType::Int64).expect_shape({n}).expect_contiguous();
          if (grid_h < 1 || grid_w < 1) throw py::value_error("render: grid shape must be positive");
          // the kernel's division-free index arithmetic (render_math.h, RenderDivisor) is exact up to these sizes
          const int64_t limit = int64_t{1} << 31;
          if (grid_h >= limit / grid_w || 2 * grid_h >= limit / h || 2 * grid_w >= limit / w)
            throw py::value_error("render: grid " + std::to_string(grid_h) + " x " + std::to_string(grid_w) +
                                  " too large: at most 2^31 - 1 cells, and 2 * grid side * image side < 2^31");
        }
        RenderCamera camera;
        for (int i = 0; i < 9; ++i) camera.r[i] = camera_values[i];
        for (int i = 0; i < 3; ++i) camera.t[i] = camera_values[9 + i];
        camera.fx = camera_values[12];
        camera.fy = camera_values[13];
        camera.cx = camera_values[14];
        camera.cy = camera_values[15];
        const bool cuda = on_cuda("render", {&points, &normals, &zbuf, &image, &pixels});
        if (organized) on_cuda("render", {&points, &grid});
        const int64_t* grid_ptr = organized ? grid.ptr<int64_t>() : nullptr;
        py::gil_scoped_release release;
        if (cuda) {
          IAENET_CUDA_BRANCH("render", render_cuda(points.ptr<float>(), normals.ptr<float>(), n, camera, grid_ptr,
                                                   grid_h, grid_w, radius, disc, zbuf.ptr<int64_t>(),
                                                   image.ptr<float>(), pixels.ptr<int32_t>(), h, w, stream));
        } else {
          render_cpu(points.ptr<float>(), normals.ptr<float>(), n, camera, grid_ptr, grid_h, grid_w, radius, disc,
                     zbuf.ptr<int64_t>(), image.ptr<float>(), pixels.ptr<int32_t>(), h, w);
        }
      },
      py::arg("points"), py::arg("normals"), py::arg("grid_index"), py::arg("camera"), py::arg("grid_h"),
      py::arg("grid_w"), py::arg("radius"), py::arg("disc"), py::arg("zbuf"), py::arg("image"), py::arg("pixels"),
      py::arg("stream") = 0,
      "Z-buffered shaded point splats into `image` (H,W) float32 and `pixels` (N,2) int32; see csrc/render/render.h.");
}

}  // namespace iaenet
