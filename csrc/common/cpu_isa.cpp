#include "common/cpu_isa.h"

#include <algorithm>
#include <atomic>

namespace iaenet {
namespace {

std::atomic<int> isa_limit{static_cast<int>(CpuIsa::Avx512)};

CpuIsa detect() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return CpuIsa::Portable;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
    return CpuIsa::Avx512;
  return CpuIsa::Avx2;
#else
  return CpuIsa::Portable;
#endif
}

}  // namespace

CpuIsa detected_cpu_isa() {
  static const CpuIsa detected = detect();
  return detected;
}

CpuIsa cpu_isa() {
  return static_cast<CpuIsa>(std::min(static_cast<int>(detected_cpu_isa()), isa_limit.load(std::memory_order_relaxed)));
}

void set_cpu_isa_limit(CpuIsa limit) { isa_limit.store(static_cast<int>(limit), std::memory_order_relaxed); }

}  // namespace iaenet
