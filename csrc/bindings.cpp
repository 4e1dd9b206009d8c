// The single pybind11 module iaenet._C. Each op folder defines bind_<op>(); this file only lists them.
#include <pybind11/pybind11.h>

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
}  // namespace iaenet

PYBIND11_MODULE(_C, m) {
  m.doc() = "iaenet C++/CUDA kernels. Call them through iaenet.ops, which validates and allocates.";
  m.attr("cuda_built") = iaenet::cuda_built();
  m.def("cuda_device_count", &iaenet::cuda_device_count, "CUDA devices visible to this build (0 without CUDA).");
  iaenet::bind_fps(m);
  iaenet::bind_knn(m);
  iaenet::bind_normals(m);
  iaenet::bind_fpfh(m);
  iaenet::bind_retrieval(m);
  iaenet::bind_render(m);
  iaenet::bind_omp(m);
}
