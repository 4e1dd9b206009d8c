// Neighbourhoods as the feature ops (normals, FPFH) take them: `idx` (N, K) int64 with the point itself in
// column 0, and optionally `count` (N,) int64, how many leading entries of each row to use (a radius cut of a
// max_nn search).
#pragma once

#include <optional>

#include "common/array.h"

namespace iaenet {

struct NeighbourLists {
  ArrayView idx;
  std::optional<ArrayView> count;

  int64_t k() const { return idx.dim(1); }
  const int64_t* idx_ptr() const { return idx.ptr<int64_t>(); }
  const int64_t* count_ptr() const { return count ? count->ptr<int64_t>() : nullptr; }

  // Throws unless the lists live on the device of `points`.
  void expect_device_of(const char* op, const ArrayView& points) const {
    on_cuda(op, {&points, &idx});
    if (count) on_cuda(op, {&points, &*count});
  }
};

// Views and checks the lists of n points; `count` may be None.
inline NeighbourLists view_neighbour_lists(py::handle idx, py::handle count, int64_t n, std::intptr_t stream) {
  NeighbourLists lists{view_array(idx, "nbr_idx", stream), std::nullopt};
  lists.idx.expect_dtype(DType::Int64).expect_shape({n, -1}).expect_contiguous();
  if (!count.is_none()) {
    lists.count = view_array(count, "nbr_count", stream);
    lists.count->expect_dtype(DType::Int64).expect_shape({n}).expect_contiguous();
  }
  return lists;
}

}  // namespace iaenet
