#include <string>

#include "common/array.h"
#include "common/cuda_support.h"
#include "retrieval/retrieval.h"

namespace iaenet {

void bind_retrieval(py::module_& m) {
  m.def(
      "retrieval",
      [](py::handle bank_obj, py::handle indptr_obj, py::handle rows_obj, py::handle patches_obj,
         py::handle queries_obj, py::handle idx_obj, py::handle dist2_obj, std::intptr_t stream, bool portable) {
        ArrayView bank = view_array(bank_obj, "bank", stream);
        ArrayView indptr = view_array(indptr_obj, "indptr", stream);
        ArrayView rows = view_array(rows_obj, "rows", stream);
        ArrayView patches = view_array(patches_obj, "patches", stream);
        ArrayView queries = view_array(queries_obj, "queries", stream);
        ArrayView idx = view_array(idx_obj, "idx", stream);
        ArrayView dist2 = view_array(dist2_obj, "dist2", stream);
        bank.expect_dtype(DType::Float32).expect_shape({-1, -1}).expect_contiguous();
        indptr.expect_dtype(DType::Int64).expect_shape({-1}).expect_contiguous();
        rows.expect_dtype(DType::Int64).expect_shape({-1}).expect_contiguous();
        patches.expect_dtype(DType::Int64).expect_shape({-1}).expect_contiguous();
        queries.expect_dtype(DType::Float32).expect_shape({-1, bank.dim(1)}).expect_contiguous();
        idx.expect_dtype(DType::Int64).expect_shape({queries.dim(0), -1}).expect_contiguous().expect_writable();
        dist2.expect_dtype(DType::Float32).expect_shape({queries.dim(0), idx.dim(1)}).expect_contiguous()
            .expect_writable();
        const int64_t r = bank.dim(0), d = bank.dim(1), c = queries.dim(0), k = idx.dim(1);
        if (indptr.dim(0) < 1) throw py::value_error("retrieval: indptr needs at least one entry (M + 1 for M patches)");
        if (k < 1) throw py::value_error("retrieval: k must be >= 1, got " + std::to_string(k));
        const bool cuda = on_cuda("retrieval", {&bank, &indptr, &rows, &patches, &queries, &idx, &dist2});
        if (cuda && k > kRetrievalCudaMaxK)
          throw py::value_error("retrieval: k = " + std::to_string(k) + " exceeds the CUDA limit " +
                                std::to_string(kRetrievalCudaMaxK));
        py::gil_scoped_release release;
        if (cuda) {
          IAENET_CUDA_BRANCH("retrieval",
                             retrieval_cuda(bank.ptr<float>(), r, d, indptr.ptr<int64_t>(), rows.ptr<int64_t>(),
                                            patches.ptr<int64_t>(), patches.dim(0), queries.ptr<float>(), c, k,
                                            idx.ptr<int64_t>(), dist2.ptr<float>(), stream));
        } else {
          retrieval_cpu(bank.ptr<float>(), r, d, indptr.ptr<int64_t>(), rows.ptr<int64_t>(), patches.ptr<int64_t>(),
                        patches.dim(0), queries.ptr<float>(), c, k, idx.ptr<int64_t>(), dist2.ptr<float>(), portable);
        }
      },
      py::arg("bank"), py::arg("indptr"), py::arg("rows"), py::arg("patches"), py::arg("queries"), py::arg("idx"),
      py::arg("dist2"), py::arg("stream") = 0, py::arg("portable") = false,
      "k nearest bank rows among the CSR rows of the selected patches into idx (C,k) int64 / dist2 (C,k) float32; "
      "see csrc/retrieval/retrieval.h. CSR contents are validated by iaenet.ops.retrieval. portable=True runs the "
      "scalar arithmetic the CUDA path shares instead of the AVX2/FMA kernel (same bits; for tests).");
}

}  // namespace iaenet
