// Borrowed, typed views of N-d arrays that live in CPU or CUDA memory.
//
// CPU arrays arrive through the buffer protocol (numpy, zero copy); anything else that speaks DLPack
// (torch CPU and CUDA tensors) arrives through `__dlpack__`. The extension never links libtorch.
// Every check raises a Python ValueError/TypeError that names the argument, so the Python layer can
// pass user arrays straight through and still give a clear error.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace iaenet {
namespace py = pybind11;

enum class DType { Float32, Float64, Int32, Int64, UInt8, Bool };
enum class DeviceType { CPU, CUDA };

const char* dtype_name(DType dtype);

class ArrayView {
 public:
  std::string name;  // the argument's name, used in error messages
  void* data = nullptr;
  DType dtype = DType::Float32;
  DeviceType device = DeviceType::CPU;
  int device_id = 0;
  bool writable = true;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements, not bytes
  std::shared_ptr<void> owner;   // keeps the Py_buffer or the DLPack managed tensor alive

  int ndim() const { return static_cast<int>(shape.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const;
  bool is_cuda() const { return device == DeviceType::CUDA; }
  bool is_contiguous() const;
  std::string shape_str() const;

  template <class T>
  T* ptr() const {
    return static_cast<T*>(data);
  }

  // Checks; each throws a Python error naming the argument. `dims` uses -1 for "any size".
  const ArrayView& expect_dtype(DType want) const;
  const ArrayView& expect_shape(std::initializer_list<int64_t> dims) const;
  const ArrayView& expect_contiguous() const;
  const ArrayView& expect_writable() const;
};

// Views `obj` without copying. `stream` is the CUDA stream the caller will use on the data; it is handed
// to the producer's `__dlpack__(stream=...)` so that it can order its pending work before ours.
ArrayView view_array(py::handle obj, const std::string& name, std::intptr_t stream = 0);

// Throws unless all arrays live on the same device. Returns true when that device is a CUDA device.
bool on_cuda(const char* op, std::initializer_list<const ArrayView*> arrays);

}  // namespace iaenet
