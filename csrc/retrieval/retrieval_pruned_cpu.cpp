// The CPU retrieval with exact pruning by projected lower bounds (contract in retrieval.h).
//
// For an orthonormal basis V (D x p) and any centre m, |V^T(q - m) - V^T(b - m)|^2 <= |q - b|^2: the distance
// in a p-dimensional projection never exceeds the true one. With V the leading principal axes of the bank, the
// projection keeps most of the spread of real features, so most candidates' bounds already exceed a query's
// current k-th distance, and only the others need the full D-dimensional distance. Per group of 4 queries:
//   pass 1  the bounds of every candidate (8 candidates x 4 queries per micro-kernel call, p FMAs each), kept in
//           a per-query buffer, with the smallest bound of each lane in each run of 256 candidates;
//   probe   the exact distances of the first k candidates whose bound is within the k-th smallest run minimum:
//           a first, usually tight, k-th distance;
//   pass 2  run by run, the candidates whose bound is within the current threshold get their exact distance and
//           enter the top k; the threshold follows the k-th distance down after every run, and a query whose
//           k-th distance is 0 stops at its k-th row (only a tie with a lower row could still enter).
// A candidate is skipped only when its bound exceeds threshold(), which covers the float32 rounding of the bound,
// of the projections and of the exact distance (see Slack), so every candidate that could enter the top k is
// evaluated. The exact distances are the bits of retrieval_math.h, and the top-k lists keep the k smallest
// (distance, row) pairs whatever the evaluation order, so the results equal the dense path's bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/parallel.h"
#include "retrieval/retrieval.h"
#include "retrieval/retrieval_cpu_kernels.h"
#include "retrieval/retrieval_math.h"

namespace iaenet {
namespace {

constexpr int64_t kTileGroups = 4;        // query groups of 4 per parallel task
constexpr double kParallelBoundWork = 1.5e8;  // C x U x p below which one thread runs it (~5 ms of bounds)
constexpr double kUnitRoundoff = 0x1p-24;  // float32
constexpr float kInf = std::numeric_limits<float>::infinity();

// The union of candidates as both passes read it.
struct Candidates {
  std::vector<int64_t> rows;   // (u,) ascending bank rows
  std::vector<float> norm;     // (u,) squared norms of the bank rows
  std::vector<float> proj;     // (blocks, p, 8) projections, 8 candidates per block, dimension-major
  std::vector<float> proj_norm;  // (blocks * 8,) squared norms of the projections; NaN on padding lanes
  int64_t blocks = 0;
  double max_length = 0.0;     // largest candidate norm (not squared)
};

// Rounding allowances of the skip test (see threshold()). Each is twice the standard worst-case bound of its
// float32 computation (error of a sum of n products <= n u sum |a_i b_i|, any order, FMA or not).
struct Slack {
  double dist;  // |kernel distance - |q - b|^2| <= dist (|q| + |b|)^2: lanes of d / 8 + 3 terms, norms, subtraction
  double proj;  // |computed projection - V^T (x - m)| <= proj |x - m|: d + 1 terms per coordinate, sqrt(p) of them
  double expansion;  // |computed bound - |pq - pb|^2| <= expansion (|pq| + |pb|)^2: p + 3 terms
  double rho;        // |V^T y| <= (1 + rho) |y|: V's columns orthonormal to 2u entrywise (checked in Python)
};

Slack bound_slack(int64_t d, int64_t p) {
  const double u = kUnitRoundoff;
  return {2.0 * (static_cast<double>(d) / 8.0 + 8.0) * u,
          2.0 * std::sqrt(static_cast<double>(p)) * static_cast<double>(d + 2) * u,
          2.0 * static_cast<double>(p + 4) * u, 4.0 * static_cast<double>(p + 1) * u};
}

// Smallest float >= x.
float float_at_least(double x) {
  float f = static_cast<float>(x);
  if (static_cast<double>(f) < x) f = std::nextafter(f, kInf);
  return f;
}

// The k-th smallest of v[0..n) (+inf when n < k): one pass keeping the k smallest in a sorted list.
float kth_smallest_of(const float* v, int64_t n, int64_t k, float* scratch) {
  std::fill(scratch, scratch + k, kInf);
  for (int64_t i = 0; i < n; ++i) {
    if (!(v[i] < scratch[k - 1])) continue;
    int64_t pos = k - 1;
    for (; pos > 0 && v[i] < scratch[pos - 1]; --pos) scratch[pos] = scratch[pos - 1];
    scratch[pos] = v[i];
  }
  return scratch[k - 1];
}

// Projected candidates in blocks of 8 (padding lanes 0 with a NaN norm, so their bounds are NaN and never pass a
// test), with the squared norms of the bank rows and of the projections.
Candidates gather_candidates(const RetrievalKernels& kernels, const float* bank, int64_t d, const float* proj_bank,
                             int64_t p, std::vector<int64_t> rows) {
  Candidates cand;
  const int64_t u = static_cast<int64_t>(rows.size());
  cand.blocks = (u + kBoundLanes - 1) / kBoundLanes;
  cand.proj.assign(cand.blocks * p * kBoundLanes, 0.0f);
  cand.proj_norm.assign(cand.blocks * kBoundLanes, std::numeric_limits<float>::quiet_NaN());
  cand.norm.resize(u);
  for (int64_t i = 0; i < u; ++i) {
    const float* x = proj_bank + rows[i] * p;
    float* block = cand.proj.data() + (i / kBoundLanes) * p * kBoundLanes + i % kBoundLanes;
    for (int64_t j = 0; j < p; ++j) block[j * kBoundLanes] = x[j];
    cand.proj_norm[i] = kernels.norm(x, p);
    cand.norm[i] = kernels.norm(bank + rows[i] * d, d);
    cand.max_length = std::max(cand.max_length, std::sqrt(static_cast<double>(cand.norm[i])));
  }
  cand.rows = std::move(rows);
  return cand;
}

// The search of one group of up to 4 queries (`nq` real ones; the others repeat the last) into best_d/best_row
// (nq x k, pre-filled with +inf / kRetrievalNoRow). Holds the group's scratch, reused from group to group.
class GroupSearch {
 public:
  GroupSearch(const RetrievalKernels& kernels, const float* bank, int64_t d, const Candidates& cand, int64_t p,
              int64_t k, Slack slack, double centre_length)
      : kernels_(kernels), bank_(bank), d_(d), cand_(cand), p_(p), k_(k), slack_(slack),
        centre_length_(centre_length), stride_(cand.blocks * kBoundLanes),
        minima_stride_((cand.blocks + kBoundRun - 1) / kBoundRun * kBoundLanes),
        bounds_(kQueryGroup * stride_), minima_(kQueryGroup * minima_stride_), positions_(stride_),
        smallest_(k) {}

  void run(const float* const* query, const float* query_norm, const float* const* proj_query,
           const float* proj_norm, int nq, float* best_d, int64_t* best_row) {
    best_d_ = best_d;
    best_row_ = best_row;
    query_ = query;
    query_norm_ = query_norm;
    nq_ = nq;
    bound_all(proj_query, proj_norm);
    probe();
    refine();
  }

 private:
  // Pass 1: every bound, and the smallest bound of each lane in each run of kBoundRun blocks.
  void bound_all(const float* const* proj_query, const float* proj_norm) {
    kernels_.bounds(proj_query, cand_.proj.data(), p_, proj_norm, cand_.proj_norm.data(), cand_.blocks,
                    bounds_.data(), stride_, minima_.data(), minima_stride_);
  }

  // The probe: the first k candidates (in bank row order) whose bound is at most the k-th smallest of the
  // query's run minima (those minima belong to distinct candidates, so at least k candidates qualify; they lie in
  // the runs whose minima reach that far), evaluated exactly: a first k-th distance. Taking the first k, not all
  // of them, bounds the work when many candidates tie (e.g. duplicated or all-zero rows). The probed
  // candidates leave the bound buffer (NaN never passes a test again).
  void probe() {
    const int64_t u = static_cast<int64_t>(cand_.rows.size()), run = kBoundRun * kBoundLanes;
    for (int t = 0; t < nq_; ++t) {
      const float* minima = minima_.data() + t * minima_stride_;
      const float limit = kth_smallest(minima, minima_stride_);
      float* bounds = bounds_.data() + t * stride_;
      int64_t taken = 0;
      for (int64_t first = 0; first < u && taken < k_; first += run) {
        if (!reaches(minima + first / kBoundRun, limit)) continue;
        const int64_t m = kernels_.at_most(bounds + first, std::min(run, u - first), limit, positions_.data());
        for (int64_t i = 0; i < m && taken < k_; ++i, ++taken) {
          queue(t, first + positions_[i]);
          bounds[first + positions_[i]] = std::numeric_limits<float>::quiet_NaN();
        }
      }
    }
    flush();
  }

  // Whether any of the 8 lane minima of a run is <= limit.
  static bool reaches(const float* lane_min, float limit) {
    for (int l = 0; l < kBoundLanes; ++l)
      if (lane_min[l] <= limit) return true;
    return false;
  }

  // Pass 2, run by run: within a run each query's threshold is fixed (a looser threshold only evaluates more), and
  // it follows the k-th distance down between runs. Runs whose lane minima all exceed it are skipped whole. Once
  // a query's k-th distance is 0, only a tie with a lower bank row can still enter, so its scan ends at the
  // position of its k-th row.
  void refine() {
    const int64_t u = static_cast<int64_t>(cand_.rows.size()), run = kBoundRun * kBoundLanes;
    for (int64_t first = 0; first < u; first += run) {
      for (int t = 0; t < nq_; ++t) {
        const int64_t n = std::min(run, scan_end(t) - first);
        const float limit = threshold(t);
        if (n <= 0 || !reaches(minima_.data() + t * minima_stride_ + first / kBoundRun, limit)) continue;
        const int64_t m = kernels_.at_most(bounds_.data() + t * stride_ + first, n, limit, positions_.data());
        for (int64_t i = 0; i < m; ++i) queue(t, first + positions_[i]);
      }
      flush();
    }
  }

  // One past the last candidate position that can still enter query t's top k.
  int64_t scan_end(int t) const {
    const float kth = best_d_[t * k_ + k_ - 1];
    if (kth > 0.0f) return static_cast<int64_t>(cand_.rows.size());
    return std::lower_bound(cand_.rows.begin(), cand_.rows.end(), best_row_[t * k_ + k_ - 1]) - cand_.rows.begin();
  }

  float kth_smallest(const float* v, int64_t n) { return kth_smallest_of(v, n, k_, smallest_.data()); }

  float threshold(int t) const {
    const double kth = best_d_[t * k_ + k_ - 1];
    if (std::isinf(kth)) return kInf;
    const double q_len = std::sqrt(static_cast<double>(query_norm_[t])), b_len = cand_.max_length;
    const double span = (q_len + centre_length_) + (b_len + centre_length_);  // |q - m| + |b - m| at most
    const double e = slack_.proj * span;
    const double reach = std::sqrt(kth + slack_.dist * (q_len + b_len) * (q_len + b_len)) * (1.0 + slack_.rho) + e;
    const double proj_span = span * (1.0 + slack_.rho) + e;  // |pq| + |pb| at most
    return float_at_least(reach * reach + slack_.expansion * proj_span * proj_span);
  }

  // The pairs to evaluate exactly are collected first, their bank rows prefetched (they are scattered over the
  // bank, and fetching them dominates), then evaluated in batches of 4 pairs (4 independent FMA chains).
  void queue(int t, int64_t pos) {
    const char* row = reinterpret_cast<const char*>(bank_ + cand_.rows[pos] * d_);
    for (int64_t offset = 0; offset < d_ * static_cast<int64_t>(sizeof(float)); offset += 64)
      __builtin_prefetch(row + offset);
    pending_.push_back({t, pos});
  }

  void flush() {
    const int64_t n = static_cast<int64_t>(pending_.size());
    for (int64_t i0 = 0; i0 < n; i0 += 4) {
      const float* a[4];
      const float* b[4];
      float a_norm[4], b_norm[4], dist[4];
      for (int64_t i = 0; i < 4; ++i) {
        const Pair& pair = pending_[std::min(i0 + i, n - 1)];  // a short batch repeats its last pair
        a[i] = query_[pair.t];
        a_norm[i] = query_norm_[pair.t];
        b[i] = bank_ + cand_.rows[pair.pos] * d_;
        b_norm[i] = cand_.norm[pair.pos];
      }
      kernels_.pair_dists(a, b, d_, a_norm, b_norm, dist);
      for (int64_t i = 0; i < std::min<int64_t>(4, n - i0); ++i) {
        const Pair& pair = pending_[i0 + i];
        retrieval_topk_insert(best_d_ + pair.t * k_, best_row_ + pair.t * k_, k_, dist[i], cand_.rows[pair.pos]);
      }
    }
    pending_.clear();
  }

  const RetrievalKernels& kernels_;
  const float* bank_;
  int64_t d_;
  const Candidates& cand_;
  int64_t p_, k_;
  Slack slack_;
  double centre_length_;
  int64_t stride_;
  int64_t minima_stride_;
  std::vector<float> bounds_;       // (4, blocks * 8) bounds of the group's queries
  std::vector<float> minima_;       // (4, runs * 8) smallest bound per lane and run
  std::vector<int32_t> positions_;  // candidate positions passing a test, of one query
  std::vector<float> smallest_;     // (k,) scratch of kth_smallest
  struct Pair {
    int t;        // query of the group
    int64_t pos;  // candidate position
  };
  std::vector<Pair> pending_;  // pairs waiting for their exact distance
  float* best_d_ = nullptr;
  int64_t* best_row_ = nullptr;
  const float* const* query_ = nullptr;
  const float* query_norm_ = nullptr;
  int nq_ = 0;
};

bool all_finite(const std::vector<float>& v, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) return false;
  return true;
}

}  // namespace

void retrieval_pruned_cpu(const float* bank, int64_t r, int64_t d, const int64_t* indptr, const int64_t* rows,
                          const int64_t* patches, int64_t q, const float* queries, int64_t c, int64_t k,
                          int64_t* idx, float* dist2, const float* proj_bank, const float* proj_queries, int64_t p,
                          double centre_length, bool portable) {
  const RetrievalKernels kernels = pick_retrieval_kernels(portable);
  const Candidates cand =
      gather_candidates(kernels, bank, d, proj_bank, p, candidate_union(r, indptr, rows, patches, q));
  const int64_t u = static_cast<int64_t>(cand.rows.size());
  std::vector<float> query_norm(c), proj_norm(c);
  for (int64_t i = 0; i < c; ++i) {
    query_norm[i] = kernels.norm(queries + i * d, d);
    proj_norm[i] = kernels.norm(proj_queries + i * p, p);
  }
  // Norms that overflow float32 would make the bounds inf - inf = NaN, which the tests read as "skip": such
  // (finite but huge) inputs take the dense path, which handles them.
  if (!all_finite(query_norm, c) || !all_finite(proj_norm, c) || !all_finite(cand.norm, u) ||
      !all_finite(cand.proj_norm, u) || !std::isfinite(centre_length)) {
    retrieval_cpu(bank, r, d, indptr, rows, patches, q, queries, c, k, idx, dist2, portable);
    return;
  }
  const Slack slack = bound_slack(d, p);
  const int64_t groups = (c + kQueryGroup - 1) / kQueryGroup;
  const int64_t tiles = (groups + kTileGroups - 1) / kTileGroups;
  parallel_for(
      tiles,
      [&](int64_t tile) {
        GroupSearch search(kernels, bank, d, cand, p, k, slack, centre_length);
        std::vector<float> best_d(kQueryGroup * k);
        std::vector<int64_t> best_row(kQueryGroup * k);
        const int64_t g1 = std::min(groups, (tile + 1) * kTileGroups);
        for (int64_t g = tile * kTileGroups; g < g1; ++g) {
          const int64_t q0 = g * kQueryGroup;
          const int nq = static_cast<int>(std::min<int64_t>(kQueryGroup, c - q0));
          const float* query[kQueryGroup];
          const float* proj_query[kQueryGroup];
          float qn[kQueryGroup], pn[kQueryGroup];
          for (int t = 0; t < kQueryGroup; ++t) {
            const int64_t qi = q0 + std::min(t, nq - 1);
            query[t] = queries + qi * d;
            proj_query[t] = proj_queries + qi * p;
            qn[t] = query_norm[qi];
            pn[t] = proj_norm[qi];
          }
          std::fill(best_d.begin(), best_d.end(), kInf);
          std::fill(best_row.begin(), best_row.end(), kRetrievalNoRow);
          search.run(query, qn, proj_query, pn, nq, best_d.data(), best_row.data());
          write_topk(best_d.data(), best_row.data(), nq * k, idx + q0 * k, dist2 + q0 * k);
        }
      },
      1, static_cast<double>(c) * static_cast<double>(u) * static_cast<double>(p) >= kParallelBoundWork);
}

}  // namespace iaenet
