#include <pybind11/stl.h>

#include <array>
#include <optional>
#include <string>

#include "common/array.h"
#include "common/cuda_support.h"
#include "normals/normals.h"

namespace iaenet {
namespace {

using OptCamera = std::optional<std::array<double, 3>>;

const double* camera_ptr(const OptCamera& camera) { return camera ? camera->data() : nullptr; }

void normals_knn(py::handle points_obj, py::handle nbr_idx_obj, py::handle nbr_count_obj, const OptCamera& camera,
                 py::handle out_obj, std::intptr_t stream) {
  ArrayView points = view_array(points_obj, "points", stream);
  ArrayView nbr_idx = view_array(nbr_idx_obj, "nbr_idx", stream);
  ArrayView out = view_array(out_obj, "out", stream);
  points.expect_dtype(DType::Float32).expect_shape({-1, 3}).expect_contiguous();
  const int64_t n = points.dim(0);
  nbr_idx.expect_dtype(DType::Int64).expect_shape({n, -1}).expect_contiguous();
  out.expect_dtype(DType::Float32).expect_shape({n, 3}).expect_contiguous().expect_writable();
  const int64_t k = nbr_idx.dim(1);
  std::optional<ArrayView> count;
  if (!nbr_count_obj.is_none()) {
    count = view_array(nbr_count_obj, "nbr_count", stream);
    count->expect_dtype(DType::Int64).expect_shape({n}).expect_contiguous();
  }
  const int64_t* count_ptr = count ? count->ptr<int64_t>() : nullptr;
  const bool cuda = count ? on_cuda("normals_knn", {&points, &nbr_idx, &*count, &out})
                          : on_cuda("normals_knn", {&points, &nbr_idx, &out});
  py::gil_scoped_release release;
  if (cuda) {
    IAENET_CUDA_BRANCH("normals_knn", normals_knn_cuda(points.ptr<float>(), n, nbr_idx.ptr<int64_t>(), k, count_ptr,
                                                       camera_ptr(camera), out.ptr<float>(), stream));
  } else {
    normals_knn_cpu(points.ptr<float>(), n, nbr_idx.ptr<int64_t>(), k, count_ptr, camera_ptr(camera),
                    out.ptr<float>());
  }
}

void normals_grid(py::handle grid_obj, int64_t half, const OptCamera& camera, py::handle out_obj,
                  std::intptr_t stream) {
  ArrayView grid = view_array(grid_obj, "grid", stream);
  ArrayView out = view_array(out_obj, "out", stream);
  grid.expect_dtype(DType::Float32).expect_shape({-1, -1, 3}).expect_contiguous();
  const int64_t h = grid.dim(0), w = grid.dim(1);
  out.expect_dtype(DType::Float32).expect_shape({h, w, 3}).expect_contiguous().expect_writable();
  if (half < 1) throw py::value_error("normals_grid: window half-size must be >= 1, got " + std::to_string(half));
  const bool cuda = on_cuda("normals_grid", {&grid, &out});
  py::gil_scoped_release release;
  if (cuda) {
    IAENET_CUDA_BRANCH("normals_grid",
                       normals_grid_cuda(grid.ptr<float>(), h, w, half, camera_ptr(camera), out.ptr<float>(), stream));
  } else {
    normals_grid_cpu(grid.ptr<float>(), h, w, half, camera_ptr(camera), out.ptr<float>());
  }
}

}  // namespace

void bind_normals(py::module_& m) {
  m.def("normals_knn", &normals_knn, py::arg("points"), py::arg("nbr_idx"), py::arg("nbr_count"), py::arg("camera"),
        py::arg("out"), py::arg("stream") = 0,
        "PCA normals from neighbour lists into `out` (N,3) float32; see csrc/normals/normals.h.");
  m.def("normals_grid", &normals_grid, py::arg("grid"), py::arg("half"), py::arg("camera"), py::arg("out"),
        py::arg("stream") = 0, "PCA normals over organized-grid windows into `out` (H,W,3); see csrc/normals/normals.h.");
}

}  // namespace iaenet
