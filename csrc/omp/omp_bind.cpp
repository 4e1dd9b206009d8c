#include <string>

#include "common/array.h"
#include "common/cuda_support.h"
#include "omp/omp.h"

namespace iaenet {

void bind_omp(py::module_& m) {
  m.def(
      "omp_residuals",
      [](py::handle bank_obj, py::handle queries_obj, py::handle idx_obj, int64_t n_atoms, py::handle residual_obj,
         py::handle codes_obj, std::intptr_t stream) {
        ArrayView bank = view_array(bank_obj, "bank", stream);
        ArrayView queries = view_array(queries_obj, "queries", stream);
        ArrayView idx = view_array(idx_obj, "idx", stream);
        ArrayView residual = view_array(residual_obj, "residual", stream);
        bank.expect_dtype(DType::Float32).expect_shape({-1, -1}).expect_contiguous();
        const int64_t d = bank.dim(1);
        queries.expect_dtype(DType::Float32).expect_shape({-1, d}).expect_contiguous();
        const int64_t c = queries.dim(0);
        idx.expect_dtype(DType::Int64).expect_shape({c, -1}).expect_contiguous();
        const int64_t k = idx.dim(1);
        residual.expect_dtype(DType::Float32).expect_shape({c}).expect_contiguous().expect_writable();
        if (k < 1 || k > kOmpMaxAtoms)
          throw py::value_error("omp_residuals: idx needs 1.." + std::to_string(kOmpMaxAtoms) + " atoms per query, got " +
                                std::to_string(k));
        if (n_atoms < 1 || n_atoms > k)
          throw py::value_error("omp_residuals: n_atoms must be in 1.." + std::to_string(k) + ", got " +
                                std::to_string(n_atoms));
        ArrayView codes;
        const bool with_codes = !codes_obj.is_none();
        if (with_codes) {
          codes = view_array(codes_obj, "codes", stream);
          codes.expect_dtype(DType::Float64).expect_shape({c, k}).expect_contiguous().expect_writable();
        }
        const bool cuda = on_cuda("omp_residuals", {&bank, &queries, &idx, &residual});
        if (with_codes) on_cuda("omp_residuals", {&bank, &codes});
        double* codes_ptr = with_codes ? codes.ptr<double>() : nullptr;
        py::gil_scoped_release release;
        if (cuda) {
          IAENET_CUDA_BRANCH("omp_residuals",
                             omp_residuals_cuda(bank.ptr<float>(), d, queries.ptr<float>(), c, idx.ptr<int64_t>(), k,
                                                n_atoms, residual.ptr<float>(), codes_ptr, stream));
        } else {
          omp_residuals_cpu(bank.ptr<float>(), d, queries.ptr<float>(), c, idx.ptr<int64_t>(), k, n_atoms,
                            residual.ptr<float>(), codes_ptr);
        }
      },
      py::arg("bank"), py::arg("queries"), py::arg("idx"), py::arg("n_atoms"), py::arg("residual"),
      py::arg("codes") = py::none(), py::arg("stream") = 0,
      "OMP residual norms (C,) float32 of each query over its atoms bank[idx[i]] (and optionally the (C,K) float64 "
      "codes); see csrc/omp/omp.h. Index ranges are validated by iaenet.ops.reconstruct.");
}

}  // namespace iaenet
