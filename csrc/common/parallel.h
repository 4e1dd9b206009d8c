// A parallel loop over [0, n) on the CPU (OpenMP). Falls back to a plain loop when OpenMP is absent.
#pragma once

#include <cstdint>

namespace iaenet {

// `body(i)` must be safe to run concurrently for different i. `grain` is the chunk size handed to a thread
// at a time: large enough that scheduling overhead stays small, small enough to balance uneven work.
// `parallel` false runs the loop on the calling thread: for work of a few milliseconds, waking the team, and
// its threads spinning afterwards against the caller's next steps (torch brings its own OpenMP runtime, whose
// threads spin too), costs more than the second core gives.
template <class Body>
void parallel_for(int64_t n, Body body, int64_t grain = 256, bool parallel = true) {
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, grain) if (parallel)
#endif
  for (int64_t i = 0; i < n; ++i) body(i);
  (void)grain;
  (void)parallel;
}

}  // namespace iaenet
