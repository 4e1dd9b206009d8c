#include "common/array.h"

#include <sstream>

#include "common/third_party/dlpack/dlpack.h"

namespace iaenet {
namespace {

[[noreturn]] void value_error(const std::string& msg) { throw py::value_error(msg); }
[[noreturn]] void type_error(const std::string& msg) { throw py::type_error(msg); }

DType dtype_from_buffer(const py::buffer_info& info, const std::string& name) {
  const char kind = info.format.empty() ? '?' : info.format.back();
  switch (kind) {
    case 'f':
      if (info.itemsize == 4) return DType::Float32;
      break;
    case 'd':
      if (info.itemsize == 8) return DType::Float64;
      break;
    case 'i': case 'l': case 'q':
      if (info.itemsize == 4) return DType::Int32;
      if (info.itemsize == 8) return DType::Int64;
      break;
    case 'B':
      if (info.itemsize == 1) return DType::UInt8;
      break;
    case '?':
      if (info.itemsize == 1) return DType::Bool;
      break;
  }
  type_error(name + ": unsupported element type (buffer format '" + info.format + "')");
}

DType dtype_from_dlpack(const DLDataType& t, const std::string& name) {
  if (t.lanes == 1) {
    if (t.code == kDLFloat && t.bits == 32) return DType::Float32;
    if (t.code == kDLFloat && t.bits == 64) return DType::Float64;
    if (t.code == kDLInt && t.bits == 32) return DType::Int32;
    if (t.code == kDLInt && t.bits == 64) return DType::Int64;
    if (t.code == kDLUInt && t.bits == 8) return DType::UInt8;
    if (t.code == kDLBool && t.bits == 8) return DType::Bool;
  }
  type_error(name + ": unsupported element type (DLPack code " + std::to_string(t.code) + ", " +
             std::to_string(t.bits) + " bits)");
}

ArrayView view_buffer(py::handle obj, const std::string& name) {
  auto info = std::make_shared<py::buffer_info>(py::reinterpret_borrow<py::buffer>(obj).request());
  ArrayView view;
  view.name = name;
  view.data = info->ptr;
  view.dtype = dtype_from_buffer(*info, name);
  view.writable = !info->readonly;
  view.shape.assign(info->shape.begin(), info->shape.end());
  for (auto s : info->strides) {
    if (s % info->itemsize != 0) value_error(name + ": strides are not a multiple of the element size");
    view.strides.push_back(s / info->itemsize);
  }
  view.owner = info;
  return view;
}

ArrayView view_dlpack(py::handle obj, const std::string& name, std::intptr_t stream, bool cuda) {
  // DLPack forbids stream 0 for CUDA: 1 names the legacy default stream, which is what 0 means to CUDA.
  py::object capsule = cuda ? obj.attr("__dlpack__")(py::arg("stream") = stream == 0 ? 1 : stream)
                            : obj.attr("__dlpack__")();
  PyObject* raw = capsule.ptr();
  if (!PyCapsule_IsValid(raw, "dltensor")) value_error(name + ": __dlpack__ did not return a DLPack capsule");
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(raw, "dltensor"));
  // Renaming marks the capsule consumed: from here on we own `managed` and must call its deleter.
  PyCapsule_SetName(raw, "used_dltensor");
  std::shared_ptr<void> owner(managed, [](void* p) {
    auto* m = static_cast<DLManagedTensor*>(p);
    if (m->deleter) m->deleter(m);
  });
  const DLTensor& t = managed->dl_tensor;
  ArrayView view;
  view.name = name;
  view.dtype = dtype_from_dlpack(t.dtype, name);
  view.data = static_cast<char*>(t.data) + t.byte_offset;
  view.device = t.device.device_type == kDLCUDA ? DeviceType::CUDA : DeviceType::CPU;
  view.device_id = t.device.device_id;
  view.shape.assign(t.shape, t.shape + t.ndim);
  if (t.strides) {
    view.strides.assign(t.strides, t.strides + t.ndim);
  } else {  // compact row-major
    view.strides.assign(t.ndim, 1);
    for (int i = t.ndim - 2; i >= 0; --i) view.strides[i] = view.strides[i + 1] * t.shape[i + 1];
  }
  view.owner = owner;
  return view;
}

}  // namespace

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::UInt8: return "uint8";
    case DType::Bool: return "bool";
  }
  return "?";
}

int64_t ArrayView::dim(int i) const {
  const int n = ndim();
  if (i < 0) i += n;
  if (i < 0 || i >= n) value_error(name + ": has " + std::to_string(n) + " dimensions, asked for dimension " + std::to_string(i));
  return shape[i];
}

int64_t ArrayView::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

bool ArrayView::is_contiguous() const {
  int64_t expected = 1;
  for (int i = ndim() - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

std::string ArrayView::shape_str() const {
  std::ostringstream s;
  s << "(";
  for (int i = 0; i < ndim(); ++i) s << (i ? ", " : "") << shape[i];
  s << (ndim() == 1 ? ",)" : ")");
  return s.str();
}

const ArrayView& ArrayView::expect_dtype(DType want) const {
  if (dtype != want) type_error(name + ": expected dtype " + dtype_name(want) + ", got " + dtype_name(dtype));
  return *this;
}

const ArrayView& ArrayView::expect_shape(std::initializer_list<int64_t> dims) const {
  bool ok = static_cast<int>(dims.size()) == ndim();
  int i = 0;
  for (auto d : dims) {
    if (ok && d >= 0 && shape[i] != d) ok = false;
    ++i;
  }
  if (!ok) {
    std::ostringstream want;
    want << "(";
    i = 0;
    for (auto d : dims) want << (i++ ? ", " : "") << (d < 0 ? std::string("*") : std::to_string(d));
    want << ")";
    value_error(name + ": expected shape " + want.str() + ", got " + shape_str());
  }
  return *this;
}

const ArrayView& ArrayView::expect_contiguous() const {
  if (!is_contiguous()) value_error(name + ": expected a C-contiguous array");
  return *this;
}

const ArrayView& ArrayView::expect_writable() const {
  if (!writable) value_error(name + ": output array is read-only");
  return *this;
}

ArrayView view_array(py::handle obj, const std::string& name, std::intptr_t stream) {
  if (py::hasattr(obj, "__dlpack_device__")) {
    auto dev = obj.attr("__dlpack_device__")().cast<std::pair<int, int>>();
    if (dev.first == kDLCUDA) return view_dlpack(obj, name, stream, /*cuda=*/true);
    if (dev.first != kDLCPU && dev.first != kDLCUDAHost)
      value_error(name + ": arrays on DLPack device type " + std::to_string(dev.first) + " are not supported");
  }
  if (PyObject_CheckBuffer(obj.ptr())) return view_buffer(obj, name);
  if (py::hasattr(obj, "__dlpack__")) return view_dlpack(obj, name, stream, /*cuda=*/false);
  type_error(name + ": expected a numpy array or a torch tensor, got " +
             std::string(py::str(py::type::of(obj).attr("__name__"))));
}

bool on_cuda(const char* op, std::initializer_list<const ArrayView*> arrays) {
  const ArrayView* first = *arrays.begin();
  for (const ArrayView* a : arrays) {
    if (a->device != first->device || a->device_id != first->device_id)
      value_error(std::string(op) + ": " + a->name + " and " + first->name + " are on different devices");
  }
  return first->is_cuda();
}

}  // namespace iaenet
