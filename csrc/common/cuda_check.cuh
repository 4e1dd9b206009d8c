// Error handling and launch helpers shared by the .cu files.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace iaenet {

inline void cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

// Checks the launch itself; asynchronous faults surface at the caller's next synchronisation.
inline void cuda_check_launch(const char* op) { cuda_check(cudaGetLastError(), op); }

inline cudaStream_t as_stream(std::intptr_t handle) { return reinterpret_cast<cudaStream_t>(handle); }

inline unsigned int blocks_for(long long n, int threads) {
  return static_cast<unsigned int>((n + threads - 1) / threads);
}

}  // namespace iaenet
