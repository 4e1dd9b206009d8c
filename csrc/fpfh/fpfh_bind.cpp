#include "common/array.h"
#include "common/cuda_support.h"
#include "common/neighbour_lists.h"
#include "fpfh/fpfh.h"

namespace iaenet {

void bind_fpfh(py::module_& m) {
  m.def(
      "fpfh",
      [](py::handle points_obj, py::handle normals_obj, py::handle nbr_idx_obj, py::handle nbr_count_obj,
         py::handle out_obj, std::intptr_t stream) {
        ArrayView points = view_array(points_obj, "points", stream);
        ArrayView normals = view_array(normals_obj, "normals", stream);
        ArrayView out = view_array(out_obj, "out", stream);
        points.expect_dtype(DType::Float32).expect_shape({-1, 3}).expect_contiguous();
        const int64_t n = points.dim(0);
        normals.expect_dtype(DType::Float32).expect_shape({n, 3}).expect_contiguous();
        const NeighbourLists nbr = view_neighbour_lists(nbr_idx_obj, nbr_count_obj, n, stream);
        out.expect_dtype(DType::Float32).expect_shape({n, 33}).expect_contiguous().expect_writable();
        nbr.expect_device_of("fpfh", points);
        const bool cuda = on_cuda("fpfh", {&points, &normals, &out});
        py::gil_scoped_release release;
        if (cuda) {
          IAENET_CUDA_BRANCH("fpfh", fpfh_cuda(points.ptr<float>(), normals.ptr<float>(), n, nbr.idx_ptr(), nbr.k(),
                                               nbr.count_ptr(), out.ptr<float>(), stream));
        } else {
          fpfh_cpu(points.ptr<float>(), normals.ptr<float>(), n, nbr.idx_ptr(), nbr.k(), nbr.count_ptr(),
                   out.ptr<float>());
        }
      },
      py::arg("points"), py::arg("normals"), py::arg("nbr_idx"), py::arg("nbr_count"), py::arg("out"),
      py::arg("stream") = 0, "FPFH (N,33) float32 into `out` from neighbour lists; see csrc/fpfh/fpfh.h.");
}

}  // namespace iaenet
