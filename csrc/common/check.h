// Error handling shared by every kernel: nothing here calls exit().
//
// GF_CHECK(cond, msg)        -> throws gf::Error ("file:line: msg") when cond is false.
// GF_CUDA_CHECK(expr)        -> (in .cu files) throws gf::Error with cudaGetErrorString.
// GF_CUDA_CHECK_LAUNCH()     -> checks cudaGetLastError() right after a kernel launch.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace gf {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void throw_error(const char* file, int line, const std::string& msg) {
  std::ostringstream s;
  s << file << ":" << line << ": " << msg;
  throw Error(s.str());
}

// CUDA stream handle passed through APIs that must not include CUDA headers.
using Stream = void*;

}  // namespace gf

#define GF_CHECK(cond, msg)                                        \
  do {                                                             \
    if (!(cond)) ::gf::throw_error(__FILE__, __LINE__, (msg));     \
  } while (0)

#ifdef __CUDACC__
#include <cuda_runtime.h>
#define GF_CUDA_CHECK(expr)                                                        \
  do {                                                                             \
    cudaError_t gf_err_ = (expr);                                                  \
    if (gf_err_ != cudaSuccess)                                                    \
      ::gf::throw_error(__FILE__, __LINE__,                                        \
                        std::string(#expr " failed: ") + cudaGetErrorString(gf_err_)); \
  } while (0)
#define GF_CUDA_CHECK_LAUNCH() GF_CUDA_CHECK(cudaGetLastError())
#endif
