#include <optional>

#include "common/array.h"
#include "common/cuda_support.h"
#include "fpfh/fpfh.h"

namespace iaenet {

void bind_fpfh(py::module_& m) {
  m.def(
      "fpfh",
      [](py::handle points_obj, py::handle normals_obj, py::handle nbr_idx_obj, py::handle nbr_count_obj,
         py::handle out_obj, std::intptr_t stream) {
        ArrayView points = view_array(points_obj, "points", stream);
        ArrayView normals = view_array(normals_obj, "normals", stream);
        ArrayView nbr_idx = view_array(nbr_idx_obj, "nbr_idx", stream);
        ArrayView out = view_array(out_obj, "out", stream);
        points.expect_dtype(DType::Float32).expect_shape({-1, 3}).expect_contiguous();
        const int64_t n = points.dim(0);
        normals.expect_dtype(DType::Float32).expect_shape({n, 3}).expect_contiguous();
        nbr_idx.expect_dtype(DType::Int64).expect_shape({n, -1}).expect_contiguous();
        out.expect_dtype(DType::Float32).expect_shape({n, 33}).expect_contiguous().expect_writable();
        const int64_t k = nbr_idx.dim(1);
        std::optional<ArrayView> count;
        if (!nbr_count_obj.is_none()) {
          count = view_array(nbr_count_obj, "nbr_count", stream);
          count->expect_dtype(DType::Int64).expect_shape({n}).expect_contiguous();
        }
        const int64_t* count_ptr = count ? count->ptr<int64_t>() : nullptr;
        const bool cuda = count ? on_cuda("fpfh", {&points, &normals, &nbr_idx, &*count, &out})
                                : on_cuda("fpfh", {&points, &normals, &nbr_idx, &out});
        py::gil_scoped_release release;
        if (cuda) {
          IAENET_CUDA_BRANCH("fpfh", fpfh_cuda(points.ptr<float>(), normals.ptr<float>(), n, nbr_idx.ptr<int64_t>(),
                                               k, count_ptr, out.ptr<float>(), stream));
        } else {
          fpfh_cpu(points.ptr<float>(), normals.ptr<float>(), n, nbr_idx.ptr<int64_t>(), k, count_ptr,
                   out.ptr<float>());
        }
      },
      py::arg("points"), py::arg("normals"), py::arg("nbr_idx"), py::arg("nbr_count"), py::arg("out"),
      py::arg("stream") = 0, "FPFH (N,33) float32 into `out` from neighbour lists; see csrc/fpfh/fpfh.h.");
}

}  // namespace iaenet
