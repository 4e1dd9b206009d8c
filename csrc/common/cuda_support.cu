#include "common/cuda_check.cuh"
#include "common/cuda_support.h"

namespace iaenet {

bool cuda_built() { return true; }

int cuda_device_count() {
  int n = 0;
  // No driver or no device is not an error here: the module must import and report 0.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace iaenet
