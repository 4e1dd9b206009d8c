// Which SIMD variant the CPU kernels run: the best the processor offers, capped by a limit that tests lower so
// that the AVX2 and portable variants also run (and are compared bit for bit) on an AVX-512 machine.
#pragma once

namespace iaenet {

enum class CpuIsa : int {
  Portable = 0,  // plain C++ (any CPU)
  Avx2 = 1,      // AVX2 + FMA
  Avx512 = 2,    // AVX-512 F, VL, DQ, BW (and AVX2 + FMA)
};

CpuIsa detected_cpu_isa();
// min(detected, limit). Kernels ask at every call, so a new limit applies to the next call.
CpuIsa cpu_isa();
void set_cpu_isa_limit(CpuIsa limit);

inline bool cpu_has(CpuIsa isa) { return static_cast<int>(cpu_isa()) >= static_cast<int>(isa); }

}  // namespace iaenet
