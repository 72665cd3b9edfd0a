#pragma once
// Tensor: a cheap, shared handle to a TensorImpl (storage + shape + strides + offset + dtype +
// device + autograd state). Copies of a Tensor alias the same impl, as in PyTorch.
//
// Views (reshape, permute, transpose, narrow, slice, expand, squeeze, unsqueeze) share storage and
// record autograd nodes; they and the other differentiable methods below are defined in ops/.
// A default-constructed Tensor is "undefined" (defined() == false); most calls on it throw.
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/storage.h"

namespace mg {

struct Node;  // autograd/node.h
class Tensor;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::f32;
  Device device;

  // autograd state
  bool requires_grad = false;       // meaningful for leaves; non-leaves require grad via grad_fn
  bool retains_grad = false;        // non-leaf asked to keep its .grad (retain_grad())
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient (leaves, or retained non-leaves)
  std::shared_ptr<Node> grad_fn;    // the node that produced this tensor (null for leaves)
  std::weak_ptr<Node> grad_accumulator;  // shared AccumulateGrad node of a leaf
};

struct TensorOptions {
  DType dtype = DType::f32;
  Device device = kCPU;
  bool requires_grad = false;
  TensorOptions& with_dtype(DType d) { dtype = d; return *this; }
  TensorOptions& with_device(Device d) { device = d; return *this; }
  TensorOptions& with_requires_grad(bool r) { requires_grad = r; return *this; }
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Allocates uninitialised contiguous memory.
  static Tensor empty(const Shape& shape, TensorOptions opts = {});

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  // --- metadata -------------------------------------------------------------------------
  const Shape& shape() const { return checked().shape; }
  const Shape& strides() const { return checked().strides; }
  int64_t offset() const { return checked().offset; }
  int64_t dim() const { return int64_t(shape().size()); }
  int64_t size(int64_t d) const;
  int64_t numel() const { return mg::numel(shape()); }
  DType dtype() const { return checked().dtype; }
  Device device() const { return checked().device; }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return checked().storage; }
  std::string desc() const;  // "f32[2, 3] on cpu", for error messages

  // Pointer to element 0 of this view (CPU or device memory). T must match dtype().
  template <class T> T* data_ptr() const {
    MG_CHECK(dtype_of<T>::value == dtype(), "data_ptr: tensor is ", dtype_name(dtype()),
             ", asked for ", dtype_name(dtype_of<T>::value));
    return static_cast<T*>(raw_data());
  }
  void* raw_data() const;

  // Copies to a host vector (any device, any layout). T must match dtype().
  template <class T> std::vector<T> to_vector() const;
  // Value of a one-element tensor converted to double.
  double item() const;

  // --- autograd -------------------------------------------------------------------------
  bool requires_grad() const;
  Tensor& set_requires_grad(bool r);  // leaves only
  bool is_leaf() const { return checked().grad_fn == nullptr; }
  Tensor grad() const;                // undefined when none has been accumulated
  void set_grad(const Tensor& g);
  void zero_grad();                   // drops .grad
  void retain_grad();                 // keep .grad on a non-leaf
  const std::shared_ptr<Node>& grad_fn() const { return checked().grad_fn; }
  // A tensor sharing storage with this one, cut from the graph, requires_grad false.
  Tensor detach() const;
  // Reverse-mode differentiation from this tensor (autograd/engine.cpp). Without `grad` the
  // tensor must have one element. After it the graph's saved tensors are freed unless
  // retain_graph; a second backward through freed nodes throws.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  // --- differentiable views and conversions (defined in ops/) -----------------------------
  Tensor reshape(const Shape& shape) const;   // a view when strides allow, else a copy
  Tensor view(const Shape& shape) const;      // must be a view; throws otherwise
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;  // Python slicing rules
  Tensor select(int64_t dim, int64_t index) const;  // narrow + squeeze
  Tensor expand(const Shape& shape) const;    // -1 keeps a dim; new leading dims allowed
  Tensor squeeze(int64_t dim) const;
  Tensor squeeze() const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;

 private:
  const TensorImpl& checked() const {
    MG_CHECK(impl_ != nullptr, "operation on an undefined tensor");
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

// Builds a view of `base`'s storage with the given geometry; no autograd (ops/ wraps it).
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace mg
