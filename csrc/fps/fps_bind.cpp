#include "common/array.h"
#include "common/cuda_support.h"
#include "fps/fps.h"

namespace iaenet {

void bind_fps(py::module_& m) {
  m.def(
      "fps",
      [](py::handle points_obj, py::handle out_obj, int64_t start, std::intptr_t stream) {
        ArrayView points = view_array(points_obj, "points", stream);
        ArrayView out = view_array(out_obj, "out", stream);
        points.expect_dtype(DType::Float32).expect_shape({-1, 3}).expect_contiguous();
        out.expect_dtype(DType::Int64).expect_shape({-1}).expect_contiguous().expect_writable();
        const int64_t n = points.dim(0), s = out.dim(0);
        if (s < 1 || s > n) throw py::value_error("fps: need 1 <= samples <= points, got " + std::to_string(s) +
                                                  " samples of " + std::to_string(n) + " points");
        if (start < 0 || start >= n) throw py::value_error("fps: start index " + std::to_string(start) + " out of range");
        const bool cuda = on_cuda("fps", {&points, &out});
        py::gil_scoped_release release;
        if (cuda) {
          IAENET_CUDA_BRANCH("fps", fps_cuda(points.ptr<float>(), n, start, out.ptr<int64_t>(), s, stream));
        } else {
          fps_cpu(points.ptr<float>(), n, start, out.ptr<int64_t>(), s);
        }
      },
      py::arg("points"), py::arg("out"), py::arg("start"), py::arg("stream") = 0,
      "Farthest point sampling into `out` (S,) int64 from `points` (N,3) float32; see csrc/fps/fps.h.");
}

}  // namespace iaenet
