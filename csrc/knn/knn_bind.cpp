#include "common/array.h"
#include "common/cuda_support.h"
#include "knn/knn.h"

namespace iaenet {

void bind_knn(py::module_& m) {
  m.def(
      "knn",
      [](py::handle points_obj, py::handle queries_obj, py::handle idx_obj, py::handle dist2_obj,
         std::intptr_t stream) {
        ArrayView points = view_array(points_obj, "points", stream);
        ArrayView queries = view_array(queries_obj, "queries", stream);
        ArrayView idx = view_array(idx_obj, "idx", stream);
        ArrayView dist2 = view_array(dist2_obj, "dist2", stream);
        points.expect_dtype(DType::Float32).expect_shape({-1, 3}).expect_contiguous();
        queries.expect_dtype(DType::Float32).expect_shape({-1, 3}).expect_contiguous();
        idx.expect_dtype(DType::Int64).expect_shape({queries.dim(0), -1}).expect_contiguous().expect_writable();
        dist2.expect_dtype(DType::Float32).expect_shape({queries.dim(0), idx.dim(1)}).expect_contiguous()
            .expect_writable();
        const int64_t n = points.dim(0), m = queries.dim(0), k = idx.dim(1);
        if (k < 1 || k > n) throw py::value_error("knn: need 1 <= k <= points, got k = " + std::to_string(k) +
                                                  " for " + std::to_string(n) + " points");
        if (n >= (int64_t(1) << 32)) throw py::value_error("knn: at most 2^32 - 1 points are supported");
        const bool cuda = on_cuda("knn", {&points, &queries, &idx, &dist2});
        py::gil_scoped_release release;
        if (cuda) {
          IAENET_CUDA_BRANCH("knn", knn_cuda(points.ptr<float>(), n, queries.ptr<float>(), m, k, idx.ptr<int64_t>(),
                                             dist2.ptr<float>(), stream));
        } else {
          knn_cpu(points.ptr<float>(), n, queries.ptr<float>(), m, k, idx.ptr<int64_t>(), dist2.ptr<float>());
        }
      },
      py::arg("points"), py::arg("queries"), py::arg("idx"), py::arg("dist2"), py::arg("stream") = 0,
      "k nearest `points` (N,3) float32 of each of `queries` (M,3) float32 into `idx` (M,k) int64 and "
      "`dist2` (M,k) float32; see csrc/knn/knn.h.");
}

}  // namespace iaenet
