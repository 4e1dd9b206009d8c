#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "iaf/iaf_cpu_blocks.h"

namespace iaenet {
namespace {

constexpr int kRankBins = 4096;  // histogram bins per coordinate: ranks to 1/4096 of the value range

}  // namespace

std::vector<int64_t> iaf_locality_order(const float* scores, int64_t n, int64_t block) {
  const int cells = std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n) / block))));
  // Per coordinate, the range of the finite values, then a histogram over it (double: no overflow at any range).
  double lo[kIafInputs], scale[kIafInputs];
  for (int c = 0; c < kIafInputs; ++c) {
    double low = INFINITY, high = -INFINITY;
    for (int64_t i = 0; i < n; ++i) {
      const double v = scores[kIafInputs * i + c];
      if (std::isfinite(v)) low = std::min(low, v), high = std::max(high, v);
    }
    lo[c] = low;
    scale[c] = high > low ? kRankBins / (high - low) : 0.0;  // one value, or none finite: a single bin
  }
  std::vector<uint16_t> bin(static_cast<size_t>(kIafInputs * n));
  std::vector<int64_t> count(kIafInputs * kRankBins, 0);
  for (int64_t i = 0; i < kIafInputs * n; ++i) {
    const int c = static_cast<int>(i % kIafInputs);
    const double v = scores[i];
    const int b = std::isfinite(v) ? std::min(kRankBins - 1, static_cast<int>((v - lo[c]) * scale[c])) : 0;
    bin[i] = static_cast<uint16_t>(b);
    ++count[c * kRankBins + b];
  }
  // The grid row of each bin: its approximate rank (the points in the bins below) times cells / n.
  std::vector<int32_t> row_of_bin(kIafInputs * kRankBins);
  for (int c = 0; c < kIafInputs; ++c) {
    int64_t below = 0;
    for (int b = 0; b < kRankBins; ++b) {
      row_of_bin[c * kRankBins + b] = static_cast<int32_t>(below * cells / n);
      below += count[c * kRankBins + b];
    }
  }
  // Cells row by row, every other row backwards; then a stable counting sort by cell.
  std::vector<int32_t> cell(static_cast<size_t>(n));
  std::vector<int64_t> start(static_cast<size_t>(cells) * cells + 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t row = row_of_bin[bin[kIafInputs * i]], column = row_of_bin[kRankBins + bin[kIafInputs * i + 1]];
    cell[i] = row * cells + (row % 2 ? cells - 1 - column : column);
    ++start[cell[i] + 1];
  }
  for (size_t k = 1; k < start.size(); ++k) start[k] += start[k - 1];
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[start[cell[i]]++] = i;
  return order;
}

}  // namespace iaenet
