// Marks functions that both the CPU path and the CUDA path compile. Per-element arithmetic lives in such
// functions so that the CPU tests exercise the very math the GPU runs (CUDA is rarely present where we test).
#pragma once

#ifdef __CUDACC__
#define IAENET_HD __host__ __device__ __forceinline__
#else
#define IAENET_HD inline
#endif
