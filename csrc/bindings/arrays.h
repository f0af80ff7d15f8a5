// Argument checking for the bindings: turns NumPy arrays and CUDA arrays (anything with
// __cuda_array_interface__, e.g. CuPy) into a raw float32 pointer plus shape (or, for class
// labels and indices, an int64 pointer: Checker::int_input, int_output), after
// checking dtype, layout, writability, shape and device. Every failure is a Python
// TypeError/ValueError naming the op and the argument. No math here.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
// Every file that casts std::vector must see the STL casters, or the casts differ between
// translation units (an ODR violation that breaks tuple arguments at run time).
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/step_arg.h"

namespace gf::py_args {

namespace py = pybind11;

enum class Device { CPU, CUDA };

struct Array {
  py::object obj;
  float* data = nullptr;         // float32 arrays (every array but the int64 ones)
  int64_t* int_data = nullptr;   // int64 arrays (int_input, int_output, input_f32_or_i64)
  bool is_int64 = false;         // which of the two pointers is set
  std::vector<int64_t> shape;
  Device device = Device::CPU;
  int device_id = -1;  // CUDA device ordinal, -1 on the CPU

  int64_t dim(size_t i) const { return shape.at(i); }
  int64_t numel() const;
  bool on_cuda() const { return device == Device::CUDA; }
};

constexpr int64_t kAny = -1;  // wildcard in an expected shape

// Checks one op's arguments; every message starts with the op's name.
class Checker {
 public:
  explicit Checker(const char* op) : op_(op) {}

  // A float32, C-contiguous input on the same device as earlier arrays of this call.
  Array input(py::handle obj, const char* name, size_t rank);
  // Same, with any rank in [min_rank, max_rank].
  Array input_ranked(py::handle obj, const char* name, size_t min_rank, size_t max_rank);
  // An int64, C-contiguous, read-only input (class labels) of this rank, on the same
  // device as the call's other arrays. Only int_data is set.
  Array int_input(py::handle obj, const char* name, size_t rank);
  // An input of either dtype, float32 or int64 (is_int64 says which), rank in
  // [min_rank, max_rank].
  Array input_f32_or_i64(py::handle obj, const char* name, size_t min_rank, size_t max_rank);
  // An input that is also written (Adam's moments, BatchNorm's running statistics).
  Array in_place(py::handle obj, const char* name, const std::vector<int64_t>& shape);
  // An optional input: None gives an empty Array (data == nullptr).
  Array optional_input(py::handle obj, const char* name, const std::vector<int64_t>& shape);
  // A per-step integer (common/step_arg.h): a Python int, or a one-element int64 array on
  // the call's device. A NumPy array's value is read now; a CUDA array's device pointer is
  // passed on and read by the kernel when it runs (so a captured CUDA graph sees each
  // replay's value). Call it after the op's first array input has fixed the device.
  StepArg step_arg(py::handle obj, const char* name);
  // An output: None allocates a new array on the call's device, otherwise the given array
  // must be writable and of exactly this shape.
  Array output(py::handle obj, const char* name, const std::vector<int64_t>& shape);
  // The same for an int64 output (only int_data is set).
  Array int_output(py::handle obj, const char* name, const std::vector<int64_t>& shape);

  void expect_shape(const Array& a, const char* name, const std::vector<int64_t>& shape) const;
  [[noreturn]] void fail_value(const std::string& msg) const;

  bool on_cuda() const { return device_ == Device::CUDA; }
  const char* op() const { return op_; }
  // CuPy's current stream on the call's device (nullptr on the CPU).
  Stream stream() const;

 private:
  enum class Elem { F32, I64 };
  Array parse(py::handle obj, const char* name, bool writable, Elem elem = Elem::F32);
  Array allocate(const std::vector<int64_t>& shape, Elem elem);
  Array checked_rank(Array a, const char* name, size_t min_rank, size_t max_rank);
  void join_device(const Array& a, const char* name);

  const char* op_;
  bool have_device_ = false;
  Device device_ = Device::CPU;
  int device_id_ = -1;
  const char* first_name_ = nullptr;
};

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace gf::py_args
