// The single pybind11 module iaenet._C. Each op folder defines bind_<op>(); this file only lists them.
#include <pybind11/pybind11.h>

#include <string>

#include "common/cpu_isa.h"
#include "common/cuda_support.h"

namespace py = pybind11;

namespace iaenet {
void bind_fps(py::module_& m);
void bind_knn(py::module_& m);
void bind_normals(py::module_& m);
void bind_fpfh(py::module_& m);
void bind_retrieval(py::module_& m);
void bind_render(py::module_& m);
void bind_omp(py::module_& m);
void bind_iaf(py::module_& m);
}  // namespace iaenet

PYBIND11_MODULE(_C, m) {
  m.doc() = "iaenet C++/CUDA kernels. Call them through iaenet.ops, which validates and allocates.";
  m.attr("cuda_built") = iaenet::cuda_built();
  m.def("cuda_device_count", &iaenet::cuda_device_count, "CUDA devices visible to this build (0 without CUDA).");
  static const char* const isa_names[] = {"portable", "avx2", "avx512"};
  m.def(
      "cpu_isa", [] { return std::string(isa_names[static_cast<int>(iaenet::cpu_isa())]); },
      "The SIMD variant the CPU kernels run: 'portable', 'avx2' or 'avx512' (the CPU's best, capped by the limit).");
  m.def(
      "set_cpu_isa_limit",
      [](const std::string& name) {
        for (int i = 0; i < 3; ++i) {
          if (name == isa_names[i]) return iaenet::set_cpu_isa_limit(static_cast<iaenet::CpuIsa>(i));
        }
        throw pybind11::value_error("set_cpu_isa_limit: expected 'portable', 'avx2' or 'avx512', got '" + name + "'");
      },
      "Caps the SIMD variant of the CPU kernels (for tests: every variant gives the same bits).");
  iaenet::bind_fps(m);
  iaenet::bind_knn(m);
  iaenet::bind_normals(m);
  iaenet::bind_fpfh(m);
  iaenet::bind_retrieval(m);
  iaenet::bind_render(m);
  iaenet::bind_omp(m);
  iaenet::bind_iaf(m);
}
