#include <pybind11/stl.h>

#include <array>
#include <optional>
#include <string>

#include "common/array.h"
#include "common/cuda_support.h"
#include "common/neighbour_lists.h"
#include "normals/normals.h"

namespace iaenet {
namespace {

using OptCamera = std::optional<std::array<double, 3>>;

const double* camera_ptr(const OptCamera& camera) { return camera ? camera->data() : nullptr; }

void normals_knn(py::handle points_obj, py::handle nbr_idx_obj, py::handle nbr_count_obj, const OptCamera& camera,
                 py::handle out_obj, std::intptr_t stream) {
  ArrayView points = view_array(points_obj, "points", stream);
  ArrayView out = view_array(out_obj, "out", stream);
  points.expect_dtype(DType::Float32).expect_shape({-1, 3}).expect_contiguous();
  const int64_t n = points.dim(0);
  const NeighbourLists nbr = view_neighbour_lists(nbr_idx_obj, nbr_count_obj, n, stream);
  out.expect_dtype(DType::Float32).expect_shape({n, 3}).expect_contiguous().expect_writable();
  nbr.expect_device_of("normals_knn", points);
  const bool cuda = on_cuda("normals_knn", {&points, &out});
  py::gil_scoped_release release;
  if (cuda) {
    IAENET_CUDA_BRANCH("normals_knn", normals_knn_cuda(points.ptr<float>(), n, nbr.idx_ptr(), nbr.k(), nbr.count_ptr(),
                                                       camera_ptr(camera), out.ptr<float>(), stream));
  } else {
    normals_knn_cpu(points.ptr<float>(), n, nbr.idx_ptr(), nbr.k(), nbr.count_ptr(), camera_ptr(camera),
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
