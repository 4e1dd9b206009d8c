#include "common/cuda_support.h"

#include <pybind11/pybind11.h>

namespace iaenet {

#ifndef IAENET_WITH_CUDA
bool cuda_built() { return false; }
int cuda_device_count() { return 0; }
#endif

void throw_no_cuda_build(const char* op) {
  throw pybind11::value_error(std::string(op) +
                              ": got a CUDA array, but iaenet was built without CUDA (rebuild with nvcc on PATH "
                              "or IAENET_CUDA=ON)");
}

}  // namespace iaenet
