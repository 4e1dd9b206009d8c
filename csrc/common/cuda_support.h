// What the rest of the extension needs to know about CUDA, without including any CUDA header.
#pragma once

#include <string>

namespace iaenet {

// True when the extension was compiled with CUDA kernels.
bool cuda_built();
// Devices the CUDA driver reports; 0 without a CUDA build, a driver or a device.
int cuda_device_count();
// Thrown for a CUDA array handed to a CPU-only build.
[[noreturn]] void throw_no_cuda_build(const char* op);

}  // namespace iaenet

// Use in a binding: IAENET_CUDA_BRANCH(op, op_cuda(...)); expands to the call in CUDA builds and to a
// clear error otherwise, so bindings need no #ifdef of their own.
#ifdef IAENET_WITH_CUDA
#define IAENET_CUDA_BRANCH(op, call) call
#else
#define IAENET_CUDA_BRANCH(op, call) ::iaenet::throw_no_cuda_build(op)
#endif
