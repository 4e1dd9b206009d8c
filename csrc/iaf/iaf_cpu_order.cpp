#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "iaf/iaf_cpu_blocks.h"

namespace iaenet {
namespace {

constexpr int kRankBins = 4096;  // histogram bins per coordinate: ranks to 1/4096 of the value range

// The grid row (0 .. cells - 1) of each point along coordinate c: its approximate rank times cells / n.
std::vector<int32_t> rank_rows(const float* scores, int64_t n, int c, int cells) {
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    const double v = scores[kIafInputs * i + c];
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  std::vector<int32_t> row(static_cast<size_t>(n), 0);
  if (!(hi > lo)) return row;  // one value (or none finite): a single row
  const double scale = kRankBins / (hi - lo);
  for (int64_t i = 0; i < n; ++i) {
    const double v = scores[kIafInputs * i + c];
    row[i] = std::isfinite(v) ? std::min(kRankBins - 1, static_cast<int32_t>((v - lo) * scale)) : 0;
  }
  std::vector<int64_t> count(kRankBins, 0);
  for (int64_t i = 0; i < n; ++i) ++count[row[i]];
  std::vector<int32_t> row_of_bin(kRankBins);
  for (int64_t b = 0, below = 0; b < kRankBins; below += count[b++])
    row_of_bin[b] = static_cast<int32_t>(below * cells / n);  // the points below bin b, times cells / n
  for (int64_t i = 0; i < n; ++i) row[i] = row_of_bin[row[i]];
  return row;
}

}  // namespace

std::vector<int64_t> iaf_locality_order(const float* scores, int64_t n, int64_t block) {
  const int cells = std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n) / block))));
  std::vector<int32_t> cell = rank_rows(scores, n, 0, cells);
  const std::vector<int32_t> column = rank_rows(scores, n, 1, cells);
  for (int64_t i = 0; i < n; ++i) cell[i] = cell[i] * cells + (cell[i] % 2 ? cells - 1 - column[i] : column[i]);
  // Counting sort by cell, stable.
  std::vector<int64_t> start(static_cast<size_t>(cells) * cells + 1, 0);
  for (int64_t i = 0; i < n; ++i) ++start[cell[i] + 1];
  for (size_t k = 1; k < start.size(); ++k) start[k] += start[k - 1];
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[start[cell[i]]++] = i;
  return order;
}

}  // namespace iaenet
