#include <string>

#include "common/array.h"
#include "common/cuda_support.h"
#include "retrieval/retrieval.h"

namespace iaenet {

void bind_retrieval(py::module_& m) {
  m.def(
      "retrieval",
      [](py::handle bank_obj, py::handle indptr_obj, py::handle rows_obj, py::handle patches_obj,
         py::handle queries_obj, py::handle idx_obj, py::handle dist2_obj, std::intptr_t stream, bool portable,
         py::handle proj_bank_obj, py::handle proj_queries_obj, double centre_length) {
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
        const bool pruned = !proj_bank_obj.is_none() || !proj_queries_obj.is_none();
        ArrayView proj_bank, proj_queries;
        if (pruned) {
          if (cuda) throw py::value_error("retrieval: projection pruning runs on the CPU path only");
          proj_bank = view_array(proj_bank_obj, "proj_bank", stream);
          proj_queries = view_array(proj_queries_obj, "proj_queries", stream);
          proj_bank.expect_dtype(DType::Float32).expect_shape({r, -1}).expect_contiguous();
          proj_queries.expect_dtype(DType::Float32).expect_shape({c, proj_bank.dim(1)}).expect_contiguous();
          on_cuda("retrieval", {&bank, &proj_bank, &proj_queries});
          if (proj_bank.dim(1) < 1 || proj_bank.dim(1) > d)
            throw py::value_error("retrieval: the projection needs 1..D = " + std::to_string(d) + " dimensions, got " +
                                  std::to_string(proj_bank.dim(1)));
          if (!(centre_length >= 0.0)) throw py::value_error("retrieval: centre_length must be >= 0");
        }
        py::gil_scoped_release release;
        if (pruned) {
          retrieval_pruned_cpu(bank.ptr<float>(), r, d, indptr.ptr<int64_t>(), rows.ptr<int64_t>(),
                               patches.ptr<int64_t>(), patches.dim(0), queries.ptr<float>(), c, k, idx.ptr<int64_t>(),
                               dist2.ptr<float>(), proj_bank.ptr<float>(), proj_queries.ptr<float>(),
                               proj_bank.dim(1), centre_length, portable);
        } else if (cuda) {
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
      py::arg("dist2"), py::arg("stream") = 0, py::arg("portable") = false, py::arg("proj_bank") = py::none(),
      py::arg("proj_queries") = py::none(), py::arg("centre_length") = 0.0,
      "k nearest bank rows among the CSR rows of the selected patches into idx (C,k) int64 / dist2 (C,k) float32; "
      "see csrc/retrieval/retrieval.h. CSR contents are validated by iaenet.ops.retrieval. portable=True runs the "
      "scalar arithmetic the CUDA path shares instead of the AVX2/FMA kernel (same bits; for tests). With proj_bank "
      "(R,p) / proj_queries (C,p) float32 (orthonormal projections about a centre of norm centre_length) the CPU "
      "path prunes candidates by projected lower bounds; same results.");
}

}  // namespace iaenet
