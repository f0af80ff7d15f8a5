#include "bindings/arrays.h"

#include <cstring>
#include <sstream>

#include "common/cuda_device.h"

namespace gf::py_args {

using namespace pybind11::literals;

int64_t Array::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s << ", ";
    if (shape[i] == kAny) s << "?"; else s << shape[i];
  }
  if (shape.size() == 1) s << ",";
  s << ")";
  return s.str();
}

static std::string type_name(py::handle obj) {
  return py::str(py::type::of(obj).attr("__module__")).cast<std::string>() + "." +
         py::str(py::type::of(obj).attr("__qualname__")).cast<std::string>();
}

Checker::Checker(const char* op, std::initializer_list<Alias> may_alias) : op_(op) {
  GF_CHECK(may_alias.size() <= kMaxAliases, "Checker: too many aliases");
  for (const Alias& a : may_alias) aliases_[n_aliases_++] = a;
}

void Checker::fail_value(const std::string& msg) const {
  throw py::value_error(std::string(op_) + ": " + msg);
}

static bool is_c_contiguous(const std::vector<int64_t>& shape, py::handle strides, int64_t item) {
  if (strides.is_none()) return true;
  auto st = strides.cast<std::vector<int64_t>>();
  int64_t expected = item;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && st[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

Array Checker::parse(py::handle obj, const char* name, bool writable, Elem elem) {
  const std::string dtype = elem == Elem::F32 ? "float32" : "int64";
  Array a;
  a.obj = py::reinterpret_borrow<py::object>(obj);
  if (py::isinstance<py::array>(obj)) {
    auto arr = py::reinterpret_borrow<py::array>(obj);
    // int64 by kind and size: it is NPY_LONG or NPY_LONGLONG depending on the platform.
    const py::dtype dt = arr.dtype();
    const bool dtype_ok = elem == Elem::F32 ? dt.is(py::dtype::of<float>())
                                            : dt.kind() == 'i' && dt.itemsize() == 8 &&
                                                  dt.byteorder() != '>';
    if (!dtype_ok)
      throw py::type_error(std::string(op_) + ": " + name + ": expected dtype " +
                           dtype + ", got " + py::str(arr.dtype()).cast<std::string>());
    a.shape.assign(arr.shape(), arr.shape() + arr.ndim());
    if (!(arr.flags() & py::array::c_style))
      fail_value(std::string(name) + ": must be C-contiguous (use numpy.ascontiguousarray)");
    if (writable && !arr.writeable()) fail_value(std::string(name) + ": must be writable");
    // Inputs may be read-only arrays; only arrays checked writable above are written.
    if (elem == Elem::F32)
      a.data = const_cast<float*>(static_cast<const float*>(arr.data()));
    else
      a.int_data = const_cast<int64_t*>(static_cast<const int64_t*>(arr.data()));
    a.device = Device::CPU;
  } else if (py::hasattr(obj, "__cuda_array_interface__")) {
#ifndef GF_WITH_CUDA
    throw py::type_error(std::string(op_) + ": " + name +
                         ": got a CUDA array but gan_fast was built without CUDA");
#else
    py::dict cai = obj.attr("__cuda_array_interface__");
    std::string typestr = cai["typestr"].cast<std::string>();
    const char* want = elem == Elem::F32 ? "<f4" : "<i8";
    if (typestr != want)
      throw py::type_error(std::string(op_) + ": " + name + ": expected dtype " +
                           dtype + " ('" + want + "'), got '" + typestr + "'");
    a.shape = cai["shape"].cast<std::vector<int64_t>>();
    if (!is_c_contiguous(a.shape, cai.contains("strides") ? cai["strides"] : py::none(),
                         elem == Elem::F32 ? 4 : 8))
      fail_value(std::string(name) + ": must be C-contiguous (use cupy.ascontiguousarray)");
    py::tuple data = cai["data"];
    if (writable && data[1].cast<bool>()) fail_value(std::string(name) + ": must be writable");
    const uintptr_t ptr = data[0].cast<uintptr_t>();
    if (elem == Elem::F32)
      a.data = reinterpret_cast<float*>(ptr);
    else
      a.int_data = reinterpret_cast<int64_t*>(ptr);
    a.device = Device::CUDA;
    a.device_id = a.numel() > 0 ? cuda_pointer_device(reinterpret_cast<void*>(ptr))
                                : cuda_current_device();
    if (a.device_id < 0)
      fail_value(std::string(name) + ": __cuda_array_interface__ points to host memory");
#endif
  } else {
    throw py::type_error(std::string(op_) + ": " + name +
                         ": expected a numpy.ndarray or a CUDA array (cupy.ndarray) of " +
                         dtype + ", got " + type_name(obj));
  }
  a.is_int64 = elem == Elem::I64;
  join_device(a, name);
  return a;
}

static std::string device_str(Device d, int id) {
  return d == Device::CPU ? std::string("the CPU (NumPy)") : "cuda:" + std::to_string(id);
}

void Checker::join_device(const Array& a, const char* name) {
  if (!have_device_) {
    have_device_ = true;
    device_ = a.device;
    device_id_ = a.device_id;
    first_name_ = name;
#ifdef GF_WITH_CUDA
    if (device_ == Device::CUDA && device_id_ != cuda_current_device())
      fail_value(std::string(name) + ": is on cuda:" + std::to_string(device_id_) +
                 " but the current device is cuda:" + std::to_string(cuda_current_device()) +
                 " (use `with cupy.cuda.Device(...)`)");
#endif
    return;
  }
  if (a.device != device_ || a.device_id != device_id_)
    fail_value(std::string(name) + ": is on " + device_str(a.device, a.device_id) + " but " +
               first_name_ + " is on " + device_str(device_, device_id_) +
               "; all arrays of one call must be on the same device");
}

void Checker::expect_shape(const Array& a, const char* name,
                           const std::vector<int64_t>& shape) const {
  bool ok = a.shape.size() == shape.size();
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] == kAny || shape[i] == a.shape[i];
  if (!ok)
    fail_value(std::string(name) + ": expected shape " + shape_str(shape) + ", got " +
               shape_str(a.shape));
}

bool Checker::may_alias(const char* a, const char* b) const {
  for (int i = 0; i < n_aliases_; ++i) {
    const Alias& al = aliases_[i];
    if ((!std::strcmp(al.output, a) && !std::strcmp(al.input, b)) ||
        (!std::strcmp(al.output, b) && !std::strcmp(al.input, a)))
      return true;
  }
  return false;
}

void Checker::track(const Array& a, const char* name, Role role) {
  const uintptr_t begin = a.is_int64 ? reinterpret_cast<uintptr_t>(a.int_data)
                                    : reinterpret_cast<uintptr_t>(a.data);
  const size_t item = a.is_int64 ? sizeof(int64_t) : sizeof(float);
  const uintptr_t end = begin + static_cast<uintptr_t>(a.numel()) * item;  // C-contiguous
  if (begin == end) return;  // an empty array holds no bytes
  for (int i = 0; i < n_seen_; ++i) {
    const Span& b = seen_[i];
    if (role == Role::input && b.role == Role::input) continue;  // reading twice is fine
    if (end <= b.begin || b.end <= begin) continue;               // disjoint
    const bool exact = begin == b.begin && end == b.end;
    const bool allowed = may_alias(name, b.name);
    if (exact && allowed) continue;
    const std::string other(b.name);
    if (allowed)
      fail_value(std::string(name) + ": overlaps " + other + " in part; it may be " + other +
                 " itself (the op then runs in place), but not a part of it or a shifted view");
    fail_value(std::string(name) + (exact ? ": is the same memory as " : ": overlaps ") + other +
               (exact ? "" : " in memory") +
               "; an array the op writes must not share memory with any other argument (the op"
               " would read values it has already overwritten); pass separate arrays");
  }
  GF_CHECK(n_seen_ < kMaxArrays, "Checker: too many arrays in one call");
  seen_[n_seen_++] = Span{name, role, begin, end};
}

Array Checker::input(py::handle obj, const char* name, size_t rank) {
  return input_ranked(obj, name, rank, rank);
}

Array Checker::ranked(py::handle obj, const char* name, size_t min_rank, size_t max_rank,
                      Role role, Elem elem) {
  Array a = parse(obj, name, role != Role::input, elem);
  if (a.shape.size() < min_rank || a.shape.size() > max_rank) {
    std::string want = min_rank == max_rank ? std::to_string(min_rank)
                                            : std::to_string(min_rank) + " to " +
                                                  std::to_string(max_rank);
    fail_value(std::string(name) + ": expected " + want + " dimensions, got " +
               std::to_string(a.shape.size()) + " with shape " + shape_str(a.shape));
  }
  track(a, name, role);
  return a;
}

Array Checker::input_ranked(py::handle obj, const char* name, size_t min_rank, size_t max_rank) {
  return ranked(obj, name, min_rank, max_rank, Role::input);
}

Array Checker::in_place_ranked(py::handle obj, const char* name, size_t min_rank,
                               size_t max_rank) {
  return ranked(obj, name, min_rank, max_rank, Role::in_place);
}

Array Checker::int_input(py::handle obj, const char* name, size_t rank) {
  Array a = parse(obj, name, false, Elem::I64);
  if (a.shape.size() != rank)
    fail_value(std::string(name) + ": expected " + std::to_string(rank) + " dimensions, got " +
               std::to_string(a.shape.size()) + " with shape " + shape_str(a.shape));
  track(a, name, Role::input);
  return a;
}

// int64 by kind and size, as parse checks it; anything else is parsed (and refused) as
// float32, so the error names the usual dtype.
static bool is_int64_array(py::handle obj) {
  if (py::isinstance<py::array>(obj)) {
    const py::dtype dt = py::reinterpret_borrow<py::array>(obj).dtype();
    return dt.kind() == 'i' && dt.itemsize() == 8;
  }
  if (py::hasattr(obj, "__cuda_array_interface__")) {
    py::dict cai = obj.attr("__cuda_array_interface__");
    return cai["typestr"].cast<std::string>() == "<i8";
  }
  return false;
}

Array Checker::input_f32_or_i64(py::handle obj, const char* name, size_t min_rank,
                                size_t max_rank) {
  return ranked(obj, name, min_rank, max_rank, Role::input,
                is_int64_array(obj) ? Elem::I64 : Elem::F32);
}

Array Checker::in_place(py::handle obj, const char* name, const std::vector<int64_t>& shape) {
  Array a = parse(obj, name, true);
  expect_shape(a, name, shape);
  track(a, name, Role::in_place);
  return a;
}

Array Checker::optional_input(py::handle obj, const char* name,
                              const std::vector<int64_t>& shape) {
  if (obj.is_none()) return Array{};
  Array a = parse(obj, name, false);
  expect_shape(a, name, shape);
  track(a, name, Role::input);
  return a;
}

StepArg Checker::step_arg(py::handle obj, const char* name) {
  StepArg s;
  if (PyIndex_Check(obj.ptr()) && !py::isinstance<py::array>(obj)) {  // int, numpy integer
    auto index = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
    if (!index) throw py::error_already_set();
    try {
      s.value = index.cast<int64_t>();
    } catch (const py::cast_error&) {
      fail_value(std::string(name) + ": does not fit in int64");
    }
    return s;
  }
  if (!py::isinstance<py::array>(obj) && !py::hasattr(obj, "__cuda_array_interface__"))
    throw py::type_error(std::string(op_) + ": " + name +
                         ": expected an int or a one-element int64 array, got " + type_name(obj));
  Array a = parse(obj, name, false, Elem::I64);
  if (a.numel() != 1 || a.shape.size() > 1)
    fail_value(std::string(name) + ": expected an int or a one-element int64 array of shape "
               "(1,) or (), got shape " + shape_str(a.shape));
  track(a, name, Role::input);
  if (a.on_cuda())
    s.ptr = a.int_data;
  else
    s.value = a.int_data[0];
  return s;
}

Array Checker::output(py::handle obj, const char* name, const std::vector<int64_t>& shape) {
  if (obj.is_none()) return allocate(shape, Elem::F32);
  Array a = parse(obj, name, true);
  expect_shape(a, name, shape);
  track(a, name, Role::output);
  return a;
}

Array Checker::int_output(py::handle obj, const char* name, const std::vector<int64_t>& shape) {
  if (obj.is_none()) return allocate(shape, Elem::I64);
  Array a = parse(obj, name, true, Elem::I64);
  expect_shape(a, name, shape);
  track(a, name, Role::output);
  return a;
}

// A new output on the call's device (CuPy allocates from its memory pool: never inside a
// CUDA graph capture, see gan_fast/cuda_graph.py). Fresh memory overlaps nothing.
Array Checker::allocate(const std::vector<int64_t>& shape, Elem elem) {
  GF_CHECK(have_device_, "output allocated before any input fixed the device");
  Array a;
  a.shape = shape;
  a.device = device_;
  a.device_id = device_id_;
  a.is_int64 = elem == Elem::I64;
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  uintptr_t ptr = 0;
  if (device_ == Device::CPU) {
    py::array arr = elem == Elem::F32 ? py::array(py::array_t<float>(dims))
                                      : py::array(py::array_t<int64_t>(dims));
    ptr = reinterpret_cast<uintptr_t>(arr.mutable_data());
    a.obj = std::move(arr);
  } else {
    py::module_ cupy = py::module_::import("cupy");
    py::object arr = cupy.attr("empty")(py::tuple(py::cast(dims)),
                                        "dtype"_a = elem == Elem::F32 ? "float32" : "int64");
    ptr = arr.attr("data").attr("ptr").cast<uintptr_t>();
    a.obj = std::move(arr);
  }
  if (elem == Elem::F32)
    a.data = reinterpret_cast<float*>(ptr);
  else
    a.int_data = reinterpret_cast<int64_t*>(ptr);
  return a;
}

Stream Checker::stream() const {
  if (device_ != Device::CUDA) return nullptr;
  py::module_ cupy = py::module_::import("cupy");
  auto ptr = cupy.attr("cuda").attr("get_current_stream")().attr("ptr").cast<uintptr_t>();
  return reinterpret_cast<Stream>(ptr);
}

}  // namespace gf::py_args
