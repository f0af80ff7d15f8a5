// Argument checking for the bindings: turns NumPy arrays and CUDA arrays (anything with
// __cuda_array_interface__, e.g. CuPy) into a raw float32 pointer plus shape (or, for class
// labels and indices, an int64 pointer: Checker::int_input, int_output), after
// checking dtype, layout, writability, shape and device. Every failure is a Python
// TypeError/ValueError naming the op and the argument. No math here.
//
// Overlap: the Checker also remembers the bytes each array of the call occupies (device
// addresses for CUDA arrays) and whether the op reads it (input), writes it (output) or
// both (in place). An output or in-place array that shares any byte with another array of
// the call is a ValueError naming both, raised before the kernel runs: a kernel that
// writes one operand while still reading another gives silently wrong results. Views of
// one buffer that do not overlap are fine, and inputs may share memory with each other.
// The only exception is declared per call (Checker's `may_alias`): an elementwise output
// may be exactly one of its inputs (the same bytes), so the op runs in place.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
// Every file that casts std::vector must see the STL casters, or the casts differ between
// translation units (an ODR violation that breaks tuple arguments at run time).
#include <pybind11/stl.h>

#include <cstdint>
#include <initializer_list>
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

// An output that may be exactly this input (same start, same size): the op then computes
// in place. Both are argument names as the Checker's calls give them.
struct Alias {
  const char* output;
  const char* input;
};

// Checks one op's arguments; every message starts with the op's name.
class Checker {
 public:
  // may_alias lists the exact aliases this op's contract allows (none by default).
  explicit Checker(const char* op, std::initializer_list<Alias> may_alias = {});

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
  // Same, with any rank in [min_rank, max_rank].
  Array in_place_ranked(py::handle obj, const char* name, size_t min_rank, size_t max_rank);
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
  enum class Role { input, output, in_place };
  Array parse(py::handle obj, const char* name, bool writable, Elem elem = Elem::F32);
  Array allocate(const std::vector<int64_t>& shape, Elem elem);
  Array ranked(py::handle obj, const char* name, size_t min_rank, size_t max_rank, Role role,
               Elem elem = Elem::F32);
  void join_device(const Array& a, const char* name);
  // Checks a's bytes against every array seen before in this call, then remembers them.
  void track(const Array& a, const char* name, Role role);
  bool may_alias(const char* a, const char* b) const;

  const char* op_;
  bool have_device_ = false;
  Device device_ = Device::CPU;
  int device_id_ = -1;
  const char* first_name_ = nullptr;

  // Fixed capacity, no allocation: the check must cost nothing next to the call itself.
  struct Span {
    const char* name;
    Role role;
    uintptr_t begin, end;  // bytes [begin, end)
  };
  static constexpr int kMaxArrays = 16, kMaxAliases = 4;
  Span seen_[kMaxArrays];
  int n_seen_ = 0;
  Alias aliases_[kMaxAliases];
  int n_aliases_ = 0;
};

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace gf::py_args
