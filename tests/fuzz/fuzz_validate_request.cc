// fuzz_validate_request: a serialized inference::ModelInferRequest (the bytes
// a client puts on the wire) -> torii::ValidateRequest against each fixed
// model of fuzz_models.h, with the default limits and with a tiny size limit.
//
// Must never crash, and every verdict must hold up:
//   - a rejection is INVALID_ARGUMENT and names the model;
//   - an acceptance hands later layers exactly what they trust without
//     re-checking: every declared input present once, shapes that match the
//     signature, batch rows in 1..max_batch_size and equal across inputs,
//     data views inside buffers that live as long as the request (every byte
//     is read here), byte sizes equal to elements x element size for fixed
//     types, BYTES buffers that re-validate and decode to the element count,
//     typed contents converted value for value, BOOL bytes 0 or 1 (the ABI's
//     promise), the size limit kept, and the requested outputs as asked.
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
#include "google/protobuf/stubs/logging.h"
#include "fuzz_models.h"
#include "inference.pb.h"
#include "server/core/datatype.h"
#include "server/core/request_validator.h"
#include "torii/runner.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

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

// Typed contents converted to raw bytes must hold the same values.
void CheckConverted(const std::string& ctx, ToriiDataType dt, const InferTensorContents& c,
                    const char* p, int64_t n) {
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
      default: FUZZ_CHECK(false, ctx + ": " + torii::DataTypeName(dt) + " came from contents");
    }
    FUZZ_CHECK(same, ctx + ": element " + std::to_string(j) + " converted wrongly");
  }
}

void CheckOne(const FuzzModel& m, const ModelInferRequest& wire,
              const torii::ValidationLimits& limits) {
  const torii::ModelSignature& sig = *m.signature;
  torii::InferenceRequest out;
  const absl::Status s = torii::ValidateRequest(m.name, sig, wire, limits, &out);
  FUZZ_CHECK(out.wire == &wire);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument,
               Describe(m, limits, s.ToString()));
    FUZZ_CHECK(absl::StartsWith(s.message(), "model '" + m.name + "': "),
               Describe(m, limits, s.ToString()));
    return;
  }

  const auto& decl = sig.inputs();
  const bool raw = wire.raw_input_contents_size() > 0;
  FUZZ_CHECK(out.inputs.size() == decl.size());
  FUZZ_CHECK(wire.inputs_size() == static_cast<int>(decl.size()),
             Describe(m, limits, "accepted " + std::to_string(wire.inputs_size()) +
                                     " inputs for " + std::to_string(decl.size())));
  if (sig.batching()) {
    FUZZ_CHECK(out.rows >= 1 && out.rows <= sig.max_batch_size(),
               Describe(m, limits, "rows " + std::to_string(out.rows)));
  } else {
    FUZZ_CHECK(out.rows == 1, Describe(m, limits, "rows " + std::to_string(out.rows)));
  }

  size_t total = 0;
  for (size_t k = 0; k < decl.size(); ++k) {
    const torii::TensorSignature& ts = decl[k];
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
    const torii::InputData& d = out.inputs[k];
    FUZZ_CHECK(in.datatype() == torii::DataTypeName(ts.datatype), ctx + ": datatype");

    // Shape: as sent, rank and fixed dims as declared, batch rows consistent.
    FUZZ_CHECK(std::equal(d.shape.begin(), d.shape.end(), in.shape().begin(),
                          in.shape().end()), ctx + ": shape differs from the wire");
    const size_t bd = sig.batching() ? 1 : 0;
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

    // The view: non-null, inside a buffer owned by the wire or the request.
    FUZZ_CHECK(d.data != nullptr, ctx + ": null data");
    if (raw) {
      const std::string& r = wire.raw_input_contents(at);
      FUZZ_CHECK(d.data == r.data() && d.byte_size == r.size(), ctx + ": raw view");
    } else {
      bool inside = false;
      for (const std::string& c : out.converted) {
        inside |= d.data >= c.data() && d.data + d.byte_size <= c.data() + c.size();
      }
      FUZZ_CHECK(inside, ctx + ": converted view outside out.converted");
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
      std::vector<std::string_view> strings;
      try {
        strings = torii::DecodeBytes(d.data, d.byte_size);
      } catch (const torii::Error& e) {
        FUZZ_CHECK(false, ctx + ": DecodeBytes: " + e.what());
      }
      FUZZ_CHECK(static_cast<int64_t>(strings.size()) == elements, ctx + ": BYTES count");
      if (!raw) {
        for (int64_t j = 0; j < elements; ++j) {
          FUZZ_CHECK(strings[j] == in.contents().bytes_contents(static_cast<int>(j)),
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
    if (!raw && esize != 0) CheckConverted(ctx, ts.datatype, in.contents(), d.data, elements);
  }
  FUZZ_CHECK(total <= limits.max_input_bytes,
             Describe(m, limits, "accepted " + std::to_string(total) + " bytes"));

  // Requested outputs: all when none are named, else exactly those named.
  FUZZ_CHECK(out.output_requested.size() == sig.outputs().size());
  for (size_t k = 0; k < sig.outputs().size(); ++k) {
    int named = 0;
    for (const auto& o : wire.outputs()) named += o.name() == sig.outputs()[k].name;
    FUZZ_CHECK(named <= 1, Describe(m, limits, "output requested twice"));
    const bool want = wire.outputs_size() == 0 || named == 1;
    FUZZ_CHECK(out.output_requested[k] == want,
               Describe(m, limits, "output '" + sig.outputs()[k].name + "' requested flag"));
  }
  for (const auto& o : wire.outputs()) {
    FUZZ_CHECK(sig.OutputIndex(o.name()) >= 0,
               Describe(m, limits, "unknown output '" + o.name() + "' accepted"));
  }
}

// --- Structure-aware mutation ------------------------------------------------

using Rng = std::mt19937;  // full 32-bit outputs

size_t Pick(Rng& rng, size_t n) { return n == 0 ? 0 : rng() % n; }

const std::vector<std::string>& TensorNames() {
  static const auto* names = [] {
    auto* v = new std::vector<std::string>{"", "X", "x ", "unknown"};
    for (const auto& m : torii_fuzz::Models()) {
      for (const auto& t : m.signature->inputs()) v->push_back(t.name);
      for (const auto& t : m.signature->outputs()) v->push_back(t.name);
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
  const bool wild = rng() % 8 == 0;  // values outside the narrow type's range
  for (int64_t j = 0; j < n; ++j) {
    const uint32_t r = rng();
    switch (dt) {
      case TORII_TYPE_BOOL: c->add_bool_contents(r & 1); break;
      case TORII_TYPE_INT8:
      case TORII_TYPE_INT16:
      case TORII_TYPE_INT32:
        c->add_int_contents(wild ? static_cast<int32_t>(r) : static_cast<int8_t>(r));
        break;
      case TORII_TYPE_INT64: c->add_int64_contents(static_cast<int64_t>(r) << (r % 33)); break;
      case TORII_TYPE_UINT8:
      case TORII_TYPE_UINT16:
      case TORII_TYPE_UINT32: c->add_uint_contents(wild ? r : r & 0xff); break;
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
    case 2: c->add_int_contents(static_cast<int32_t>(rng()) >> (rng() % 32)); break;
    case 3: c->add_int64_contents(static_cast<int64_t>(rng()) << 31); break;
    case 4: c->add_uint_contents(rng() >> (rng() % 32)); break;
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

void MutateRequest(Rng& rng, ModelInferRequest& req) {
  const int n = req.inputs_size();
  const int i = static_cast<int>(Pick(rng, static_cast<size_t>(n)));
  switch (rng() % 14) {
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
  torii::ValidationLimits defaults;
  torii::ValidationLimits tiny;
  tiny.max_input_bytes = 64;
  for (const FuzzModel& m : torii_fuzz::Models()) {
    CheckOne(m, wire, defaults);
    CheckOne(m, wire, tiny);
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
