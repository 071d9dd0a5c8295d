// The checks a Torii host makes on what a runner hands it: output
// allocations (name, datatype, shape, byte size) and BYTES buffers. One
// header-only copy, used by torii-server and by the SDK's fake host
// (torii/testing/fake_host.h), so a runner that passes its unit tests cannot
// fail the same checks in the server. Header-only C++17; no dependencies
// beyond the ABI header. Each check returns an empty string when it passes,
// else a message naming what was expected and what arrived.
#ifndef TORII_HOST_CHECKS_H_
#define TORII_HOST_CHECKS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "torii/runner_abi.h"

namespace torii {
namespace host_checks {

inline const char* TypeName(ToriiDataType t) {
  switch (t) {
    case TORII_TYPE_BOOL: return "BOOL";
    case TORII_TYPE_UINT8: return "UINT8";
    case TORII_TYPE_UINT16: return "UINT16";
    case TORII_TYPE_UINT32: return "UINT32";
    case TORII_TYPE_UINT64: return "UINT64";
    case TORII_TYPE_INT8: return "INT8";
    case TORII_TYPE_INT16: return "INT16";
    case TORII_TYPE_INT32: return "INT32";
    case TORII_TYPE_INT64: return "INT64";
    case TORII_TYPE_FP16: return "FP16";
    case TORII_TYPE_FP32: return "FP32";
    case TORII_TYPE_FP64: return "FP64";
    case TORII_TYPE_BYTES: return "BYTES";
    case TORII_TYPE_BF16: return "BF16";
    default: return "INVALID";
  }
}

/// Bytes per element; 0 for BYTES and INVALID.
inline size_t TypeSize(ToriiDataType t) {
  switch (t) {
    case TORII_TYPE_BOOL: case TORII_TYPE_UINT8: case TORII_TYPE_INT8: return 1;
    case TORII_TYPE_UINT16: case TORII_TYPE_INT16: case TORII_TYPE_FP16: case TORII_TYPE_BF16:
      return 2;
    case TORII_TYPE_UINT32: case TORII_TYPE_INT32: case TORII_TYPE_FP32: return 4;
    case TORII_TYPE_UINT64: case TORII_TYPE_INT64: case TORII_TYPE_FP64: return 8;
    default: return 0;
  }
}

inline std::string ShapeText(const int64_t* shape, size_t ndim) {
  std::string s = "[";
  for (size_t i = 0; i < ndim; ++i) {
    if (i > 0) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

/// The number of elements of `shape`, or false when a dimension is negative
/// or the product does not fit in int64 (a runner may hand any numbers over).
inline bool ElementCount(const int64_t* shape, size_t ndim, int64_t* out) {
  int64_t n = 1;
  for (size_t i = 0; i < ndim; ++i) {
    const int64_t d = shape[i];
    if (d < 0) return false;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return false;
    n *= d;
  }
  *out = n;
  return true;
}

/// What the config declares for one output.
struct DeclaredOutput {
  ToriiDataType datatype;
  const std::vector<int64_t>* dims;  // without the batch dimension; -1 = variable
};

/// Checks an output allocation. `who` names it in messages ("model 'm'
/// output 'Y'"). `batch_rows` is the leading dimension the output must have
/// when the model batches (the batch's total rows, or one request's rows for
/// a response), or -1 when the model does not batch.
inline std::string CheckOutputAllocation(const std::string& who, const DeclaredOutput& declared,
                                         int64_t batch_rows, ToriiDataType datatype,
                                         const int64_t* shape, size_t ndim, size_t byte_size) {
  if (datatype != declared.datatype) {
    return who + ": config declares " + TypeName(declared.datatype) + ", the runner produced " +
           TypeName(datatype);
  }
  const std::vector<int64_t>& dims = *declared.dims;
  const bool batching = batch_rows >= 0;
  const size_t batch_dims = batching ? 1 : 0;
  bool ok = ndim == dims.size() + batch_dims && (shape != nullptr || ndim == 0);
  if (ok && batching) ok = shape[0] == batch_rows;
  for (size_t i = 0; ok && i < dims.size(); ++i) {
    const int64_t got = shape[i + batch_dims];
    ok = got >= 0 && (dims[i] == -1 || dims[i] == got);
  }
  if (!ok) {
    std::vector<int64_t> want;
    if (batching) want.push_back(batch_rows);
    want.insert(want.end(), dims.begin(), dims.end());
    return who + ": expected shape " + ShapeText(want.data(), want.size()) +
           ", the runner produced " +
           (shape == nullptr ? std::string("no shape") : ShapeText(shape, ndim));
  }
  int64_t elements = 0;
  if (!ElementCount(shape, ndim, &elements)) {
    return who + ": shape " + ShapeText(shape, ndim) + " has more elements than fit in int64";
  }
  const size_t esize = TypeSize(datatype);
  if (esize == 0) {
    // BYTES: every element needs at least its 4-byte length prefix.
    if (static_cast<uint64_t>(elements) > byte_size / 4) {
      return who + ": shape " + ShapeText(shape, ndim) + " needs at least " +
             std::to_string(static_cast<uint64_t>(elements)) + " x 4 bytes of BYTES length " +
             "prefixes, the runner asked for " + std::to_string(byte_size);
    }
    return "";
  }
  if (static_cast<uint64_t>(elements) > std::numeric_limits<size_t>::max() / esize ||
      byte_size != static_cast<size_t>(elements) * esize) {
    return who + ": shape " + ShapeText(shape, ndim) + " of " + TypeName(datatype) + " needs " +
           std::to_string(static_cast<uint64_t>(elements)) + " x " + std::to_string(esize) +
           " bytes, the runner asked for " + std::to_string(byte_size);
  }
  return "";
}

/// Checks that a BYTES buffer is exactly `expected_elements` length-prefixed
/// elements (4-byte little-endian length, then the bytes) tiling it.
/// `what` names the tensor in messages.
inline std::string CheckBytesBuffer(const void* data, size_t size, int64_t expected_elements,
                                    const std::string& what) {
  const auto* p = static_cast<const unsigned char*>(data);
  size_t pos = 0;
  int64_t count = 0;
  while (pos < size) {
    if (size - pos < 4) {
      return what + ": BYTES element " + std::to_string(count) +
             " has a truncated 4-byte length prefix at byte " + std::to_string(pos) + " of " +
             std::to_string(size);
    }
    const uint32_t len = uint32_t(p[pos]) | (uint32_t(p[pos + 1]) << 8) |
                         (uint32_t(p[pos + 2]) << 16) | (uint32_t(p[pos + 3]) << 24);
    pos += 4;
    if (len > size - pos) {
      return what + ": BYTES element " + std::to_string(count) + " declares " +
             std::to_string(len) + " bytes but only " + std::to_string(size - pos) + " remain";
    }
    pos += len;
    ++count;
  }
  if (count != expected_elements) {
    return what + ": shape needs " + std::to_string(expected_elements) +
           " BYTES elements, the data holds " + std::to_string(count);
  }
  return "";
}

/// Copies a host-filled struct into a runner's out-struct without writing
/// past the size the runner declared (its struct_size, set by the caller):
/// a runner built against an older, smaller struct keeps its memory intact.
/// `struct_size` of `out` is left as the runner set it.
template <typename T>
inline void FillSized(const T& filled, T* out) {
  const uint32_t theirs = out->struct_size;
  const size_t n = theirs < sizeof(T) ? theirs : sizeof(T);
  if (n > sizeof(uint32_t)) {
    // Skip struct_size itself (the first member).
    std::memcpy(reinterpret_cast<char*>(out) + sizeof(uint32_t),
                reinterpret_cast<const char*>(&filled) + sizeof(uint32_t), n - sizeof(uint32_t));
  }
}

}  // namespace host_checks
}  // namespace torii

#endif  // TORII_HOST_CHECKS_H_
