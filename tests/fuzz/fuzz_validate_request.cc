// fuzz_validate_request: a serialized inference::ModelInferRequest (the bytes
// a client puts on the wire) -> the gRPC frontend's adapter
// torii::RequestFromWire (server/grpc/wire_request.h) -> torii::ValidateRequest
// against the ModelSpec of each fixed model of fuzz_models.h, with the
// default limits and with a tiny size limit: the request path of a ModelInfer
// call up to the scheduler.
//
// Must never crash, and every verdict must hold up:
//   - the adapter rejects with INVALID_ARGUMENT naming the wire's model, and
//     what it accepts is the wire request as it was: model, version, id,
//     parameters, requested outputs, and one input per wire input (name,
//     datatype, shape) whose data view is exactly its raw_input_contents
//     entry or its own converted buffer, typed contents converted value for
//     value;
//   - the validator rejects with INVALID_ARGUMENT naming the model; what it
//     accepts is what later layers trust without re-checking: every declared
//     input present once, shapes that match the spec, batch rows in
//     1..max_batch_size and equal across inputs, data views that stay inside
//     buffers living as long as the request (every byte is read here), byte
//     sizes equal to elements x element size for fixed types, BYTES buffers
//     that re-validate and decode (with the SDK's decoder) to the element
//     count, BOOL bytes 0 or 1 (the ABI's promise), the size limit kept, the
//     requested outputs as asked (none with the unsupported 'classification'
//     parameter), and the 'timeout' parameter read as a whole number of
//     microseconds >= 0 into queue_timeout.
//
// A custom mutator (structure-aware, over the parsed message) is mixed with
// libFuzzer's byte-level mutations, so inputs stay parseable and often valid.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "fuzz_check.h"
#include "fuzz_models.h"
#include "fuzz_sdk.h"
#include "google/protobuf/stubs/logging.h"
#include "inference.pb.h"
#include "server/core/datatype.h"
#include "server/core/request_validator.h"
#include "server/grpc/wire_request.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

using inference::InferParameter;
using inference::InferTensorContents;
using inference::ModelInferRequest;
using torii_fuzz::FuzzModel;

std::string Describe(const FuzzModel& m, const torii::ValidationLimits& limits,
                     const std::string& what) {
  return "model '" + m.name + "' (max_input_bytes " +
         std::to_string(limits.max_input_bytes) + "): " + what;
}

template <typename T>
T Load(const char* p, int64_t j) {
  T v;
  std::memcpy(&v, p + j * static_cast<int64_t>(sizeof(T)), sizeof(T));
  return v;
}

template <typename T>
bool SameBits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// Typed contents converted to raw bytes must hold the same values, in a
// buffer of exactly their count x element size.
void CheckConverted(const std::string& ctx, ToriiDataType dt, const InferTensorContents& c,
                    const char* p, size_t size) {
  int64_t n = 0;
  switch (dt) {
    case TORII_TYPE_BOOL: n = c.bool_contents_size(); break;
    case TORII_TYPE_INT8:
    case TORII_TYPE_INT16:
    case TORII_TYPE_INT32: n = c.int_contents_size(); break;
    case TORII_TYPE_INT64: n = c.int64_contents_size(); break;
    case TORII_TYPE_UINT8:
    case TORII_TYPE_UINT16:
    case TORII_TYPE_UINT32: n = c.uint_contents_size(); break;
    case TORII_TYPE_UINT64: n = c.uint64_contents_size(); break;
    case TORII_TYPE_FP32: n = c.fp32_contents_size(); break;
    case TORII_TYPE_FP64: n = c.fp64_contents_size(); break;
    case TORII_TYPE_BYTES: {
      std::string want;
      for (const std::string& e : c.bytes_contents()) torii_fuzz::SdkAppendBytesElement(want, e);
      FUZZ_CHECK(want == std::string(p, size), ctx + ": BYTES contents converted wrongly");
      return;
    }
    default: FUZZ_CHECK(false, ctx + ": " + torii::DataTypeName(dt) + " came from contents");
  }
  FUZZ_CHECK(size == static_cast<size_t>(n) * torii::DataTypeSize(dt),
             ctx + ": " + std::to_string(size) + " converted bytes for " + std::to_string(n) +
                 " values");
  for (int64_t j = 0; j < n; ++j) {
    const int k = static_cast<int>(j);
    bool same = true;
    switch (dt) {
      case TORII_TYPE_BOOL: same = Load<uint8_t>(p, j) == (c.bool_contents(k) ? 1 : 0); break;
      case TORII_TYPE_INT8: same = Load<int8_t>(p, j) == c.int_contents(k); break;
      case TORII_TYPE_INT16: same = Load<int16_t>(p, j) == c.int_contents(k); break;
      case TORII_TYPE_INT32: same = Load<int32_t>(p, j) == c.int_contents(k); break;
      case TORII_TYPE_INT64: same = Load<int64_t>(p, j) == c.int64_contents(k); break;
      case TORII_TYPE_UINT8: same = Load<uint8_t>(p, j) == c.uint_contents(k); break;
      case TORII_TYPE_UINT16: same = Load<uint16_t>(p, j) == c.uint_contents(k); break;
      case TORII_TYPE_UINT32: same = Load<uint32_t>(p, j) == c.uint_contents(k); break;
      case TORII_TYPE_UINT64: same = Load<uint64_t>(p, j) == c.uint64_contents(k); break;
      case TORII_TYPE_FP32: same = SameBits(Load<float>(p, j), c.fp32_contents(k)); break;
      case TORII_TYPE_FP64: same = SameBits(Load<double>(p, j), c.fp64_contents(k)); break;
      default: break;
    }
    FUZZ_CHECK(same, ctx + ": element " + std::to_string(j) + " converted wrongly");
  }
}

// A wire parameter and its core form hold the same value.
bool SameParameter(const InferParameter& w, const torii::Parameter& p) {
  switch (w.parameter_choice_case()) {
    case InferParameter::kBoolParam: return p.is_bool() && p.as_bool() == w.bool_param();
    case InferParameter::kInt64Param: return p.is_int64() && p.as_int64() == w.int64_param();
    case InferParameter::kUint64Param: return p.is_uint64() && p.as_uint64() == w.uint64_param();
    case InferParameter::kDoubleParam:
      return p.is_double() && SameBits(p.as_double(), w.double_param());
    case InferParameter::kStringParam: return p.is_string() && p.as_string() == w.string_param();
    default: return false;
  }
}

void CheckParameters(const std::string& ctx,
                     const google::protobuf::Map<std::string, InferParameter>& wire,
                     const torii::Parameters& params) {
  size_t with_value = 0;
  for (const auto& [key, w] : wire) {
    if (w.parameter_choice_case() == InferParameter::PARAMETER_CHOICE_NOT_SET) continue;
    ++with_value;
    const torii::Parameter* p = params.Find(key);
    FUZZ_CHECK(p != nullptr && SameParameter(w, *p), ctx + ": parameter '" + key + "'");
  }
  FUZZ_CHECK(params.size() == with_value, ctx + ": parameters that were not sent");
}

// RequestFromWire's result, shared by every model: the validator reorders
// the inputs of its own copy.
struct Adapted {
  absl::Status status;
  torii::InferenceRequest request;
  std::vector<std::string> converted;
};

void CheckAdapted(const ModelInferRequest& wire, const Adapted& a) {
  const std::string ctx = "RequestFromWire";
  if (!a.status.ok()) {
    FUZZ_CHECK(a.status.code() == absl::StatusCode::kInvalidArgument, a.status.ToString());
    FUZZ_CHECK(absl::StartsWith(a.status.message(), "model '" + wire.model_name() + "': "),
               a.status.ToString());
    return;
  }
  const torii::InferenceRequest& r = a.request;
  FUZZ_CHECK(r.model_name == wire.model_name() && r.model_version == wire.model_version() &&
                 r.id == wire.id(),
             ctx + ": model, version or id");
  CheckParameters(ctx, wire.parameters(), r.parameters);
  const bool raw = wire.raw_input_contents_size() > 0;
  FUZZ_CHECK(!raw || wire.raw_input_contents_size() == wire.inputs_size(),
             ctx + ": accepted raw_input_contents that do not pair with the inputs");
  FUZZ_CHECK(r.inputs.size() == static_cast<size_t>(wire.inputs_size()), ctx + ": inputs");
  FUZZ_CHECK(raw || a.converted.size() == r.inputs.size(), ctx + ": converted buffers");
  for (int i = 0; i < wire.inputs_size(); ++i) {
    const auto& in = wire.inputs(i);
    const torii::InferenceInput& d = r.inputs[i];
    const std::string ictx = ctx + ": input " + std::to_string(i) + " '" + in.name() + "'";
    FUZZ_CHECK(d.name == in.name(), ictx + ": name");
    FUZZ_CHECK(d.datatype != TORII_TYPE_INVALID &&
                   in.datatype() == torii::DataTypeName(d.datatype),
               ictx + ": datatype '" + in.datatype() + "'");
    FUZZ_CHECK(std::equal(d.shape.begin(), d.shape.end(), in.shape().begin(), in.shape().end()),
               ictx + ": shape differs from the wire");
    FUZZ_CHECK(d.data != nullptr, ictx + ": null data");
    if (raw) {
      const std::string& bytes = wire.raw_input_contents(i);
      FUZZ_CHECK(d.data == bytes.data() && d.byte_size == bytes.size(), ictx + ": raw view");
    } else {
      const std::string& c = a.converted[static_cast<size_t>(i)];
      FUZZ_CHECK(d.data == c.data() && d.byte_size == c.size(), ictx + ": converted view");
      CheckConverted(ictx, d.datatype, in.contents(), d.data, d.byte_size);
    }
    torii_fuzz::TouchAll(d.data, d.byte_size);
  }
  FUZZ_CHECK(r.requested_outputs.size() == static_cast<size_t>(wire.outputs_size()),
             ctx + ": requested outputs");
  for (int i = 0; i < wire.outputs_size(); ++i) {
    FUZZ_CHECK(r.requested_outputs[i].name == wire.outputs(i).name(), ctx + ": output name");
    CheckParameters(ctx + ": output '" + wire.outputs(i).name() + "'",
                    wire.outputs(i).parameters(), r.requested_outputs[i].parameters);
  }
}

void CheckOne(const FuzzModel& m, const ModelInferRequest& wire, const Adapted& a,
              const torii::ValidationLimits& limits) {
  const torii::ModelSpec& spec = m.spec;
  // A copy: its input views still point into `wire` and `a.converted`.
  torii::InferenceRequest out = a.request;
  const absl::Status s = torii::ValidateRequest(spec, limits, &out);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument,
               Describe(m, limits, s.ToString()));
    FUZZ_CHECK(absl::StartsWith(s.message(), "model '" + m.name + "': "),
               Describe(m, limits, s.ToString()));
    return;
  }

  const auto& decl = spec.inputs;
  const bool raw = wire.raw_input_contents_size() > 0;
  FUZZ_CHECK(out.inputs.size() == decl.size());
  FUZZ_CHECK(wire.inputs_size() == static_cast<int>(decl.size()),
             Describe(m, limits, "accepted " + std::to_string(wire.inputs_size()) +
                                     " inputs for " + std::to_string(decl.size())));
  if (spec.batching_enabled()) {
    FUZZ_CHECK(out.rows >= 1 && out.rows <= spec.max_batch_size,
               Describe(m, limits, "rows " + std::to_string(out.rows)));
  } else {
    FUZZ_CHECK(out.rows == 1, Describe(m, limits, "rows " + std::to_string(out.rows)));
  }

  size_t total = 0;
  for (size_t k = 0; k < decl.size(); ++k) {
    const torii::TensorSpec& ts = decl[k];
    const std::string ctx = Describe(m, limits, "input '" + ts.name + "'");
    // Exactly one wire input carries this name.
    int at = -1;
    for (int i = 0; i < wire.inputs_size(); ++i) {
      if (wire.inputs(i).name() == ts.name) {
        FUZZ_CHECK(at < 0, ctx + " accepted twice");
        at = i;
      }
    }
    FUZZ_CHECK(at >= 0, ctx + " accepted while missing");
    const auto& in = wire.inputs(at);
    const torii::InferenceInput& d = out.inputs[k];
    FUZZ_CHECK(d.name == ts.name, ctx + ": not in declared order");
    FUZZ_CHECK(d.datatype == ts.datatype && in.datatype() == torii::DataTypeName(ts.datatype),
               ctx + ": datatype");

    // Shape: as sent, rank and fixed dims as declared, batch rows consistent.
    FUZZ_CHECK(std::equal(d.shape.begin(), d.shape.end(), in.shape().begin(),
                          in.shape().end()), ctx + ": shape differs from the wire");
    const size_t bd = spec.batching_enabled() ? 1 : 0;
    FUZZ_CHECK(d.shape.size() == ts.dims.size() + bd, ctx + ": rank");
    int64_t elements = 1;
    bool overflow = false;
    for (size_t j = 0; j < d.shape.size(); ++j) {
      FUZZ_CHECK(d.shape[j] >= 0, ctx + ": negative dimension");
      if (j >= bd) {
        FUZZ_CHECK(ts.dims[j - bd] == -1 || ts.dims[j - bd] == d.shape[j], ctx + ": dims");
      }
      overflow |= __builtin_mul_overflow(elements, d.shape[j], &elements);
    }
    FUZZ_CHECK(!overflow, ctx + ": element count overflows");
    if (bd) FUZZ_CHECK(d.shape[0] == out.rows, ctx + ": batch rows");

    // The view: non-null, exactly the buffer the wire or the adapter owns.
    FUZZ_CHECK(d.data != nullptr, ctx + ": null data");
    if (raw) {
      const std::string& r = wire.raw_input_contents(at);
      FUZZ_CHECK(d.data == r.data() && d.byte_size == r.size(), ctx + ": raw view");
    } else {
      const std::string& c = a.converted[static_cast<size_t>(at)];
      FUZZ_CHECK(d.data == c.data() && d.byte_size == c.size(), ctx + ": converted view");
    }
    torii_fuzz::TouchAll(d.data, d.byte_size);
    total += d.byte_size;

    const size_t esize = torii::DataTypeSize(ts.datatype);
    if (esize != 0) {
      FUZZ_CHECK(d.byte_size == static_cast<uint64_t>(elements) * esize,
                 ctx + ": " + std::to_string(d.byte_size) + " bytes for " +
                     std::to_string(elements) + " elements");
    } else {
      const absl::Status again = torii::ValidateBytesBuffer(d.data, d.byte_size, elements, "x");
      FUZZ_CHECK(again.ok(), ctx + ": " + again.ToString());
      const torii_fuzz::SdkDecoded strings = torii_fuzz::SdkDecodeBytes(d.data, d.byte_size);
      FUZZ_CHECK(strings.ok, ctx + ": DecodeBytes: " + strings.message);
      FUZZ_CHECK(static_cast<int64_t>(strings.elements.size()) == elements,
                 ctx + ": BYTES count");
      if (!raw) {
        for (int64_t j = 0; j < elements; ++j) {
          FUZZ_CHECK(strings.elements[static_cast<size_t>(j)] ==
                         in.contents().bytes_contents(static_cast<int>(j)),
                     ctx + ": BYTES element " + std::to_string(j) + " converted wrongly");
        }
      }
    }
    if (ts.datatype == TORII_TYPE_BOOL) {
      // runner_abi.h: BOOL is "1 byte, 0 or 1"; the SDK reads it as C++ bool.
      for (size_t j = 0; j < d.byte_size; ++j) {
        const auto b = static_cast<unsigned char>(d.data[j]);
        FUZZ_CHECK(b <= 1, ctx + ": BOOL byte " + std::to_string(j) + " is " +
                               std::to_string(b) + " (must be 0 or 1)");
      }
    }
  }
  FUZZ_CHECK(total <= limits.max_input_bytes,
             Describe(m, limits, "accepted " + std::to_string(total) + " bytes"));

  // Requested outputs: all when none are named, else exactly those named.
  FUZZ_CHECK(out.output_requested.size() == spec.outputs.size());
  for (size_t k = 0; k < spec.outputs.size(); ++k) {
    int named = 0;
    for (const auto& o : wire.outputs()) named += o.name() == spec.outputs[k].name;
    FUZZ_CHECK(named <= 1, Describe(m, limits, "output requested twice"));
    const bool want = wire.outputs_size() == 0 || named == 1;
    FUZZ_CHECK(out.output_requested[k] == want,
               Describe(m, limits, "output '" + spec.outputs[k].name + "' requested flag"));
  }
  for (const auto& o : wire.outputs()) {
    FUZZ_CHECK(spec.OutputIndex(o.name()) >= 0,
               Describe(m, limits, "unknown output '" + o.name() + "' accepted"));
    FUZZ_CHECK(o.parameters().count("classification") == 0 ||
                   o.parameters().at("classification").parameter_choice_case() ==
                       InferParameter::PARAMETER_CHOICE_NOT_SET,
               Describe(m, limits, "output '" + o.name() + "' accepted with 'classification'"));
  }

  // The 'timeout' parameter: a whole number of microseconds >= 0, or refused.
  int64_t want_us = 0;
  auto t = wire.parameters().find("timeout");
  if (t != wire.parameters().end()) {
    const InferParameter& p = t->second;
    const bool whole =
        (p.parameter_choice_case() == InferParameter::kInt64Param && p.int64_param() >= 0) ||
        (p.parameter_choice_case() == InferParameter::kUint64Param &&
         p.uint64_param() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
    const bool absent = p.parameter_choice_case() == InferParameter::PARAMETER_CHOICE_NOT_SET;
    FUZZ_CHECK(whole || absent, Describe(m, limits, "accepted timeout " + p.ShortDebugString()));
    if (whole) {
      want_us = p.parameter_choice_case() == InferParameter::kInt64Param
                    ? p.int64_param()
                    : static_cast<int64_t>(p.uint64_param());
    }
  }
  FUZZ_CHECK(out.queue_timeout.count() == want_us,
             Describe(m, limits, "queue_timeout " + std::to_string(out.queue_timeout.count()) +
                                     " us for " + std::to_string(want_us)));
}

// --- Structure-aware mutation ------------------------------------------------

using Rng = std::mt19937;  // full 32-bit outputs

size_t Pick(Rng& rng, size_t n) { return n == 0 ? 0 : rng() % n; }

const std::vector<std::string>& TensorNames() {
  static const auto* names = [] {
    auto* v = new std::vector<std::string>{"", "X", "x ", "unknown"};
    for (const auto& m : torii_fuzz::Models()) {
      for (const auto& t : m.spec.inputs) v->push_back(t.name);
      for (const auto& t : m.spec.outputs) v->push_back(t.name);
    }
    return v;
  }();
  return *names;
}

std::string RandomDatatype(Rng& rng) {
  const int t = static_cast<int>(Pick(rng, 17));
  if (t == 15) return "fp32";
  if (t == 16) return "";
  return torii::DataTypeName(static_cast<ToriiDataType>(t));  // 0 is "INVALID"
}

int64_t InterestingDim(Rng& rng) {
  static const int64_t kDims[] = {0, 1, 2, 3, 4, 5, 8, 9, -1, -2,
                                  std::numeric_limits<int64_t>::min(),
                                  std::numeric_limits<int64_t>::max(),
                                  int64_t{1} << 31, (int64_t{1} << 32) + 1, int64_t{1} << 62,
                                  int64_t{1} << 26, (int64_t{1} << 26) + 1, 16, 17, 64};
  if (rng() % 4 == 0) return static_cast<int64_t>(rng()) - 8;
  return kDims[Pick(rng, sizeof(kDims) / sizeof(kDims[0]))];
}

// 32-bit values at and around the limits of the narrow integer types, where
// a range check is off by one or by a bit, and sometimes any value.
uint32_t InterestingBits(Rng& rng) {
  static const uint32_t kEdges[] = {0u,          1u,          0x7fu,      0x80u,      0xffu,
                                    0x100u,      0x7fffu,     0x8000u,    0xffffu,    0x10000u,
                                    0x1ffffu,    0x7fffffffu, 0x80000000u, 0xffffffffu,
                                    0xffffff7fu, 0xffffff80u, 0xffff7fffu, 0xffff8000u};
  switch (rng() % 4) {
    case 0: return rng();
    case 1: return rng() >> (rng() % 32);
    default: {
      const uint32_t e = kEdges[Pick(rng, sizeof(kEdges) / sizeof(kEdges[0]))];
      return e + static_cast<uint32_t>(static_cast<int>(rng() % 3) - 1);  // e-1, e, e+1
    }
  }
}

std::string RandomBytes(Rng& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::string EncodeBytesElements(Rng& rng, int64_t n) {
  std::string out;
  for (int64_t j = 0; j < n; ++j) torii::AppendBytesElement(out, RandomBytes(rng, Pick(rng, 6)));
  return out;
}

// Element count of a shape if it is small and non-negative, else -1.
int64_t SmallElementCount(const google::protobuf::RepeatedField<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || d > 256) return -1;
    n *= d;
    if (n > 256) return -1;
  }
  return n;
}

// Gives input `i` data that fits its shape and datatype (raw or typed),
// sometimes with one value out of range.
void FitData(Rng& rng, ModelInferRequest& req, int i) {
  auto* in = req.mutable_inputs(i);
  const ToriiDataType dt = torii::DataTypeFromName(in->datatype());
  const int64_t n = SmallElementCount(in->shape());
  if (n < 0 || dt == TORII_TYPE_INVALID) return;
  const size_t esize = torii::DataTypeSize(dt);
  const bool use_raw = req.raw_input_contents_size() > 0 || dt == TORII_TYPE_FP16 ||
                       dt == TORII_TYPE_BF16 || rng() % 3 == 0;
  if (use_raw) {
    for (auto& other : *req.mutable_inputs()) other.clear_contents();
    while (req.raw_input_contents_size() < req.inputs_size()) req.add_raw_input_contents();
    std::string bytes = esize == 0 ? EncodeBytesElements(rng, n) : RandomBytes(rng, n * esize);
    if (dt == TORII_TYPE_BOOL) {
      for (auto& c : bytes) c = static_cast<char>(rng() % 8 == 0 ? 2 : c & 1);
    }
    *req.mutable_raw_input_contents(i) = bytes;
    return;
  }
  req.clear_raw_input_contents();
  InferTensorContents* c = in->mutable_contents();
  c->Clear();
  const bool wild = rng() % 8 == 0;  // values at and beyond the narrow type's limits
  for (int64_t j = 0; j < n; ++j) {
    const uint32_t r = rng();
    switch (dt) {
      case TORII_TYPE_BOOL: c->add_bool_contents(r & 1); break;
      case TORII_TYPE_INT8:
      case TORII_TYPE_INT16:
      case TORII_TYPE_INT32:
        c->add_int_contents(wild ? static_cast<int32_t>(InterestingBits(rng))
                                 : static_cast<int8_t>(r));
        break;
      case TORII_TYPE_INT64: c->add_int64_contents(static_cast<int64_t>(r) << (r % 33)); break;
      case TORII_TYPE_UINT8:
      case TORII_TYPE_UINT16:
      case TORII_TYPE_UINT32: c->add_uint_contents(wild ? InterestingBits(rng) : r & 0xff); break;
      case TORII_TYPE_UINT64: c->add_uint64_contents(static_cast<uint64_t>(r) << (r % 33)); break;
      case TORII_TYPE_FP32: c->add_fp32_contents(static_cast<float>(static_cast<int32_t>(r)) / 7); break;
      case TORII_TYPE_FP64: c->add_fp64_contents(static_cast<double>(static_cast<int32_t>(r)) / 7); break;
      case TORII_TYPE_BYTES: c->add_bytes_contents(RandomBytes(rng, Pick(rng, 6))); break;
      default: c->add_fp32_contents(1); break;  // FP16/BF16 cannot travel typed
    }
  }
}

void MutateContents(Rng& rng, InferTensorContents* c) {
  switch (rng() % 10) {
    case 0: c->Clear(); break;
    case 1: c->add_bool_contents(rng() & 1); break;
    case 2: c->add_int_contents(static_cast<int32_t>(InterestingBits(rng))); break;
    case 3: c->add_int64_contents(static_cast<int64_t>(rng()) << 31); break;
    case 4: c->add_uint_contents(InterestingBits(rng)); break;
    case 5: c->add_uint64_contents(static_cast<uint64_t>(rng()) << 32); break;
    case 6: c->add_fp32_contents(static_cast<float>(rng())); break;
    case 7: c->add_fp64_contents(static_cast<double>(rng())); break;
    case 8: c->add_bytes_contents(RandomBytes(rng, Pick(rng, 9))); break;
    default:
      if (c->int_contents_size() > 0) c->mutable_int_contents()->RemoveLast();
      if (c->bytes_contents_size() > 0) c->mutable_bytes_contents()->RemoveLast();
      if (c->fp32_contents_size() > 0) c->mutable_fp32_contents()->RemoveLast();
      break;
  }
}

void MutateParameters(Rng& rng, google::protobuf::Map<std::string, InferParameter>* params) {
  static const char* const kKeys[] = {"timeout", "timeout", "priority", "sequence_id", ""};
  const std::string key = kKeys[Pick(rng, sizeof(kKeys) / sizeof(kKeys[0]))];
  if (rng() % 6 == 0) {
    params->erase(key);
    return;
  }
  InferParameter& p = (*params)[key];
  switch (rng() % 7) {
    case 0: p.set_int64_param(static_cast<int64_t>(rng()) - (int64_t{1} << 31)); break;
    case 1: p.set_int64_param(rng() % 2 ? std::numeric_limits<int64_t>::min() : 0); break;
    case 2: p.set_uint64_param(static_cast<uint64_t>(rng()) << (rng() % 40)); break;
    case 3: p.set_uint64_param(~uint64_t{0} >> (rng() % 2)); break;
    case 4: p.set_double_param(static_cast<double>(rng()) / 3); break;
    case 5: p.set_string_param(std::to_string(rng() % 1000)); break;
    default: p.set_bool_param(rng() & 1); break;
  }
}

void MutateRequest(Rng& rng, ModelInferRequest& req) {
  const int n = req.inputs_size();
  const int i = static_cast<int>(Pick(rng, static_cast<size_t>(n)));
  switch (rng() % 15) {
    case 0:
      if (n > 0) req.mutable_inputs(i)->set_name(TensorNames()[Pick(rng, TensorNames().size())]);
      break;
    case 1:
      if (n > 0) req.mutable_inputs(i)->set_datatype(RandomDatatype(rng));
      break;
    case 2:  // set, add or remove a dimension
      if (n > 0) {
        auto* shape = req.mutable_inputs(i)->mutable_shape();
        const int r = static_cast<int>(rng() % 3);
        if (r == 0 && shape->size() > 0) {
          shape->Set(static_cast<int>(Pick(rng, shape->size())), InterestingDim(rng));
        } else if (r == 1 || shape->size() == 0) {
          shape->Add(InterestingDim(rng));
        } else {
          shape->RemoveLast();
        }
      }
      break;
    case 3:
    case 4:  // make an input's data fit its shape: the path to acceptance
      if (n > 0) FitData(rng, req, i);
      break;
    case 5: {  // new input, fresh or copied
      auto* in = req.add_inputs();
      if (n > 0 && rng() % 2) *in = req.inputs(i);
      in->set_name(TensorNames()[Pick(rng, TensorNames().size())]);
      if (rng() % 2) in->set_datatype(RandomDatatype(rng));
      if (in->shape_size() == 0) in->add_shape(1 + static_cast<int64_t>(rng() % 4));
      if (req.raw_input_contents_size() > 0) req.add_raw_input_contents();
      if (rng() % 2) FitData(rng, req, req.inputs_size() - 1);
      break;
    }
    case 6:  // remove an input (and its raw entry)
      if (n > 0) {
        req.mutable_inputs()->DeleteSubrange(i, 1);
        if (i < req.raw_input_contents_size()) req.mutable_raw_input_contents()->DeleteSubrange(i, 1);
      }
      break;
    case 7:
      if (n > 1) req.mutable_inputs()->SwapElements(i, static_cast<int>(Pick(rng, n)));
      break;
    case 8:
      if (n > 0) MutateContents(rng, req.mutable_inputs(i)->mutable_contents());
      break;
    case 9: {  // raw_input_contents: add, drop, resize or rewrite one entry
      const int r = static_cast<int>(rng() % 4);
      if (r == 0) {
        req.add_raw_input_contents(RandomBytes(rng, Pick(rng, 17)));
      } else if (r == 1 && req.raw_input_contents_size() > 0) {
        req.mutable_raw_input_contents()->RemoveLast();
      } else if (req.raw_input_contents_size() > 0) {
        std::string* s = req.mutable_raw_input_contents(
            static_cast<int>(Pick(rng, req.raw_input_contents_size())));
        if (r == 2) {
          s->resize(Pick(rng, s->size() + 9));
        } else {
          const size_t cap = s->size() + 64;
          s->resize(cap);
          s->resize(LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(s->data()), cap - 64, cap));
        }
      }
      break;
    }
    case 10:
      req.clear_raw_input_contents();
      break;
    case 11: {  // requested outputs
      const int r = static_cast<int>(rng() % 4);
      if (r == 0 && req.outputs_size() > 0) {
        req.mutable_outputs()->RemoveLast();
      } else if (r == 1 && req.outputs_size() > 0) {
        (*req.mutable_outputs(static_cast<int>(Pick(rng, req.outputs_size())))
              ->mutable_parameters())["classification"]
            .set_int64_param(1);
      } else {
        req.add_outputs()->set_name(TensorNames()[Pick(rng, TensorNames().size())]);
      }
      break;
    }
    case 12:
      req.set_model_name(TensorNames()[Pick(rng, TensorNames().size())]);
      break;
    case 13:  // request parameters: the 'timeout' the validator reads, others passed on
      MutateParameters(rng, req.mutable_parameters());
      break;
    default:  // several fits at once: a complete request
      for (int k = 0; k < n; ++k) FitData(rng, req, k);
      break;
  }
}

}  // namespace

// Protobuf logs every rejected string field (invalid UTF-8) to stderr; at
// thousands of inputs a second that drowns the fuzzer's own output.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (size_t{1} << 24)) return 0;
  ModelInferRequest wire;
  if (!wire.ParseFromArray(data, static_cast<int>(size))) return 0;
  Adapted adapted;
  adapted.status = torii::RequestFromWire(wire, &adapted.request, &adapted.converted);
  CheckAdapted(wire, adapted);
  if (!adapted.status.ok()) return 0;
  torii::ValidationLimits defaults;
  torii::ValidationLimits tiny;
  tiny.max_input_bytes = 64;
  for (const FuzzModel& m : torii_fuzz::Models()) {
    CheckOne(m, wire, adapted, defaults);
    CheckOne(m, wire, adapted, tiny);
  }
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  Rng rng(seed);
  ModelInferRequest req;
  // A quarter of the time, and for anything that does not parse: bytes.
  if (rng() % 4 == 0 || !req.ParseFromArray(data, static_cast<int>(size))) {
    return LLVMFuzzerMutate(data, size, max_size);
  }
  const int rounds = 1 + static_cast<int>(rng() % 3);
  for (int r = 0; r < rounds; ++r) MutateRequest(rng, req);
  std::string out;
  if (!req.SerializeToString(&out) || out.size() > max_size) {
    return LLVMFuzzerMutate(data, size, max_size);
  }
  std::memcpy(data, out.data(), out.size());
  return out.size();
}
