#include <string>
#include <vector>

#include "common/array.h"
#include "common/cuda_support.h"
#include "iaf/iaf.h"

namespace iaenet {
namespace {

// Views the (weight, bias) pairs of one network and checks that they chain 2 -> ... -> 2; the views go to `keep`
// (they hold the DLPack capsules until the kernel has run).
IafMlp view_mlp(py::handle layers, const std::string& name, std::intptr_t stream, std::vector<ArrayView>& keep) {
  if (!py::isinstance<py::sequence>(layers) || py::isinstance<py::str>(layers))
    throw py::type_error(name + ": expected a sequence of (weight, bias) pairs");
  const auto seq = py::reinterpret_borrow<py::sequence>(layers);
  const int count = static_cast<int>(py::len(seq));
  if (count < 1 || count > kIafMaxLayers)
    throw py::value_error(name + ": needs 1.." + std::to_string(kIafMaxLayers) + " layers, got " +
                          std::to_string(count));
  IafMlp mlp;
  mlp.layers = count;
  mlp.width[0] = kIafInputs;
  for (int l = 0; l < count; ++l) {
    const std::string layer = name + "[" + std::to_string(l) + "]";
    py::handle pair = seq[l];
    if (!py::isinstance<py::sequence>(pair) || py::len(pair) != 2)
      throw py::type_error(layer + ": expected a (weight, bias) pair");
    const auto wb = py::reinterpret_borrow<py::sequence>(pair);
    ArrayView w = view_array(wb[0], layer + " weight", stream);
    ArrayView b = view_array(wb[1], layer + " bias", stream);
    w.expect_dtype(DType::Float32).expect_shape({-1, mlp.width[l]}).expect_contiguous();
    const int64_t out = w.dim(0);
    const int64_t want = l + 1 == count ? kIafInputs : -1;
    if (want > 0 && out != want)
      throw py::value_error(layer + " weight: the last layer needs " + std::to_string(want) + " outputs, got " +
                            std::to_string(out));
    if (out < 1 || out > kIafMaxWidth)
      throw py::value_error(layer + " weight: needs 1.." + std::to_string(kIafMaxWidth) + " output units, got " +
                            std::to_string(out));
    b.expect_dtype(DType::Float32).expect_shape({out}).expect_contiguous();
    mlp.width[l + 1] = static_cast<int>(out);
    mlp.weight[l] = w.ptr<float>();
    mlp.bias[l] = b.ptr<float>();
    keep.push_back(std::move(w));
    keep.push_back(std::move(b));
  }
  return mlp;
}

}  // namespace

void bind_iaf(py::module_& m) {
  m.def(
      "iaf_forward",
      [](py::handle scores_obj, py::handle selector, py::handle predictor, py::handle a_obj, py::handle s_obj,
         std::intptr_t stream) {
        ArrayView scores = view_array(scores_obj, "scores", stream);
        scores.expect_dtype(DType::Float32).expect_shape({-1, kIafInputs}).expect_contiguous();
        const int64_t n = scores.dim(0);
        ArrayView a = view_array(a_obj, "a", stream);
        a.expect_dtype(DType::Float32).expect_shape({n}).expect_contiguous().expect_writable();
        std::vector<ArrayView> arrays;
        IafNet net;
        net.selector = view_mlp(selector, "selector", stream, arrays);
        net.predictor = view_mlp(predictor, "predictor", stream, arrays);
        const bool with_s = !s_obj.is_none();
        if (with_s) {
          arrays.push_back(view_array(s_obj, "s", stream));
          arrays.back().expect_dtype(DType::Float32).expect_shape({n, kIafInputs}).expect_contiguous();
          arrays.back().expect_writable();
        }
        const bool cuda = on_cuda("iaf_forward", {&scores, &a});
        for (const ArrayView& array : arrays) on_cuda("iaf_forward", {&scores, &array});
        float* s = with_s ? arrays.back().ptr<float>() : nullptr;
        py::gil_scoped_release release;
        if (cuda) {
          IAENET_CUDA_BRANCH("iaf_forward",
                             iaf_forward_cuda(net, scores.ptr<float>(), n, a.ptr<float>(), s, stream));
        } else {
          iaf_forward_cpu(net, scores.ptr<float>(), n, a.ptr<float>(), s);
        }
      },
      py::arg("scores"), py::arg("selector"), py::arg("predictor"), py::arg("a"), py::arg("s") = py::none(),
      py::arg("stream") = 0,
      "Fused IAF inference: writes A (N,) float32 and optionally S (N, 2) float32 for the (N, 2) float32 scores; "
      "selector and predictor are sequences of (weight (out, in), bias (out,)) float32 pairs chaining 2 -> ... -> 2. "
      "See csrc/iaf/iaf.h; iaenet.ops.iaf_forward validates and allocates.");
}

}  // namespace iaenet
