// Self-query kNN by cell blocks: the fast path of knn_cpu when the queries are the points themselves.
//
// All queries of one occupied grid cell share their candidates: the points of the (2R+1)^3 block of cells
// around it, gathered once into contiguous coordinate arrays (structure of arrays), so that the distances of
// a query to all of them are one vectorisable loop. Each query keeps only the candidates below a limit that
// is at most the exact bound beyond the block (knn_face_bound), and orders them by a counting sort on the
// distance followed by an insertion pass, instead of a heap or nth_element + sort. A query is finished here
// when at least k candidates lie below the limit: then no point outside the block (or above the limit) can
// beat or tie its k-th, so the result equals brute force. Otherwise it is left to the shell search.
#pragma once

#include <cstdint>
#include <vector>

#include "knn/knn_grid.h"

namespace iaenet {

// Cells of the block on each side of the query's cell (a 3x3x3 block).
constexpr int64_t kBlockRadius = 1;

// Target points per occupied cell for the block search (the grid's cell size for self queries).
double block_target_occupancy(int64_t k);

// Writes rows idx/dist2 (k entries each, row i for point i) for every point whose k nearest the block search
// settles exactly, and returns the indices of the other points, ascending, for the shell search.
std::vector<int64_t> knn_self_blocks(const UniformGrid& grid, int64_t k, int64_t* idx, float* dist2);

}  // namespace iaenet
