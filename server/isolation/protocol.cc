#include "server/isolation/protocol.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace torii {
namespace isolation {
namespace {

// Limits that a well-formed message never reaches; they keep a corrupted
// peer from making us allocate without bound.
constexpr uint32_t kMaxCount = 1u << 20;
constexpr uint32_t kMaxRank = 64;

class Writer {
 public:
  Writer(std::string* out, MessageType type) : out_(out) {
    out_->clear();
    Put<uint32_t>(kFrameMagic);
    Put<uint32_t>(static_cast<uint32_t>(type));
    Put<uint32_t>(0);  // body size, patched in Finish()
  }
  template <typename T>
  void Put(T v) {
    const size_t at = out_->size();
    out_->resize(at + sizeof(T));
    std::memcpy(&(*out_)[at], &v, sizeof(T));
  }
  void PutString(absl::string_view s) {
    Put<uint32_t>(static_cast<uint32_t>(s.size()));
    out_->append(s.data(), s.size());
  }
  void PutShape(const std::vector<int64_t>& shape) {
    Put<uint32_t>(static_cast<uint32_t>(shape.size()));
    const size_t at = out_->size();
    out_->resize(at + shape.size() * sizeof(int64_t));
    if (!shape.empty()) std::memcpy(&(*out_)[at], shape.data(), shape.size() * sizeof(int64_t));
  }
  void PutParameters(const Parameters& params) {
    Put<uint32_t>(static_cast<uint32_t>(params.size()));
    for (const auto& [key, p] : params) {
      PutString(key);
      Put<uint8_t>(static_cast<uint8_t>(p.value.index()));
      if (p.is_bool()) Put<uint8_t>(p.as_bool() ? 1 : 0);
      if (p.is_int64()) Put<int64_t>(p.as_int64());
      if (p.is_uint64()) Put<uint64_t>(p.as_uint64());
      if (p.is_double()) Put<double>(p.as_double());
      if (p.is_string()) PutString(p.as_string());
    }
  }
  void PutPairs(const std::vector<std::pair<std::string, std::string>>& pairs) {
    Put<uint32_t>(static_cast<uint32_t>(pairs.size()));
    for (const auto& [k, v] : pairs) {
      PutString(k);
      PutString(v);
    }
  }
  void PutTensor(const TensorRef& t) {
    PutShape(t.shape);
    Put<uint64_t>(t.offset);
    Put<uint64_t>(t.size);
  }
  void PutHandle(const RequestHandle& h) {
    Put<uint32_t>(h.channel);
    Put<uint64_t>(h.batch_id);
    Put<uint32_t>(h.index);
  }
  void PutNamed(const std::vector<NamedTensor>& ts) {
    Put<uint32_t>(static_cast<uint32_t>(ts.size()));
    for (const auto& t : ts) {
      PutString(t.name);
      Put<int32_t>(t.datatype);
      PutTensor(t.tensor);
    }
  }
  void PutOutputs(const std::vector<BatchReply::Output>& outputs) {
    Put<uint32_t>(static_cast<uint32_t>(outputs.size()));
    for (const auto& o : outputs) {
      Put<uint32_t>(o.index);
      Put<int32_t>(o.datatype);
      PutTensor(o.tensor);
    }
  }
  void Finish() {
    const uint32_t body = static_cast<uint32_t>(out_->size() - kFrameHeaderSize);
    std::memcpy(&(*out_)[8], &body, 4);
  }

 private:
  std::string* out_;
};

class Reader {
 public:
  explicit Reader(absl::string_view body) : p_(body.data()), left_(body.size()) {}

  template <typename T>
  bool Get(T* v) {
    if (left_ < sizeof(T)) return false;
    std::memcpy(v, p_, sizeof(T));
    p_ += sizeof(T);
    left_ -= sizeof(T);
    return true;
  }
  bool GetCount(uint32_t* n, uint32_t max) { return Get(n) && *n <= max; }
  bool GetString(std::string* s) {
    uint32_t n;
    if (!Get(&n) || n > left_) return false;
    s->assign(p_, n);
    p_ += n;
    left_ -= n;
    return true;
  }
  bool GetShape(std::vector<int64_t>* shape) {
    uint32_t n;
    if (!GetCount(&n, kMaxRank) || n * sizeof(int64_t) > left_) return false;
    shape->resize(n);
    if (n > 0) std::memcpy(shape->data(), p_, n * sizeof(int64_t));
    p_ += n * sizeof(int64_t);
    left_ -= n * sizeof(int64_t);
    return true;
  }
  bool GetParameters(Parameters* params) {
    uint32_t n;
    if (!GetCount(&n, kMaxCount)) return false;
    params->clear();
    for (uint32_t i = 0; i < n; ++i) {
      std::string key;
      uint8_t type;
      if (!GetString(&key) || !Get(&type)) return false;
      switch (type) {
        case 0: {
          uint8_t b;
          if (!Get(&b)) return false;
          params->Set(std::move(key), b != 0);
          break;
        }
        case 1: {
          int64_t v;
          if (!Get(&v)) return false;
          params->Set(std::move(key), v);
          break;
        }
        case 2: {
          uint64_t v;
          if (!Get(&v)) return false;
          params->Set(std::move(key), v);
          break;
        }
        case 3: {
          double v;
          if (!Get(&v)) return false;
          params->Set(std::move(key), v);
          break;
        }
        case 4: {
          std::string v;
          if (!GetString(&v)) return false;
          params->Set(std::move(key), std::move(v));
          break;
        }
        default:
          return false;
      }
    }
    return true;
  }
  bool GetPairs(std::vector<std::pair<std::string, std::string>>* pairs) {
    uint32_t n;
    if (!GetCount(&n, kMaxCount)) return false;
    pairs->resize(n);
    for (auto& [k, v] : *pairs) {
      if (!GetString(&k) || !GetString(&v)) return false;
    }
    return true;
  }
  bool GetTensor(TensorRef* t) { return GetShape(&t->shape) && Get(&t->offset) && Get(&t->size); }
  bool GetHandle(RequestHandle* h) { return Get(&h->channel) && Get(&h->batch_id) && Get(&h->index); }
  bool GetNamed(std::vector<NamedTensor>* ts) {
    uint32_t n;
    if (!GetCount(&n, kMaxCount)) return false;
    ts->resize(n);
    for (auto& t : *ts) {
      if (!GetString(&t.name) || !Get(&t.datatype) || !GetTensor(&t.tensor)) return false;
    }
    return true;
  }
  bool GetOutputs(std::vector<BatchReply::Output>* outputs) {
    uint32_t n;
    if (!GetCount(&n, kMaxCount)) return false;
    outputs->resize(n);
    for (auto& o : *outputs) {
      if (!Get(&o.index) || !Get(&o.datatype) || !GetTensor(&o.tensor)) return false;
    }
    return true;
  }
  bool done() const { return left_ == 0; }

 private:
  const char* p_;
  size_t left_;
};

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed runner host message: ", what));
}

bool InRegion(const TensorRef& t, uint64_t region_size) {
  return t.offset <= region_size && t.size <= region_size - t.offset;
}

}  // namespace

void Encode(const LoadMessage& m, std::string* out) {
  Writer w(out, MessageType::kLoad);
  w.PutString(m.name);
  w.Put<int64_t>(m.version);
  w.PutString(m.directory);
  w.PutString(m.version_directory);
  w.PutString(m.library_path);
  w.PutString(m.runner);
  w.PutString(m.default_model_filename);
  w.PutString(m.config);
  w.Put<uint32_t>(m.first_instance);
  w.Put<uint32_t>(m.instance_count);
  w.Put<uint8_t>(m.allow_config_completion);
  w.Put<uint64_t>(m.max_input_bytes);
  w.Finish();
}

void Encode(const LoadReply& m, std::string* out) {
  Writer w(out, MessageType::kLoadReply);
  w.Put<int32_t>(m.code);
  w.PutString(m.message);
  w.Put<int64_t>(m.pid);
  w.PutString(m.runner);
  w.PutString(m.runner_version);
  w.PutString(m.runner_build);
  w.PutString(m.runner_abi);
  w.PutPairs(m.properties);
  w.PutString(m.completed_config);
  w.Finish();
}

void Encode(const BatchMessage& m, std::string* out) {
  Writer w(out, MessageType::kBatch);
  w.Put<uint64_t>(m.batch_id);
  w.Put<uint64_t>(m.region_size);
  w.Put<uint64_t>(m.cancel_offset);
  w.Put<uint64_t>(m.outputs_offset);
  w.Put<uint32_t>(static_cast<uint32_t>(m.requests.size()));
  for (const auto& r : m.requests) {
    w.Put<int64_t>(r.rows);
    w.Put<int64_t>(r.deadline_ns);
    w.PutString(r.id);
    w.Put<uint32_t>(static_cast<uint32_t>(r.inputs.size()));
    for (const auto& t : r.inputs) w.PutTensor(t);
    w.PutString(absl::string_view(reinterpret_cast<const char*>(r.requested.data()),
                                  r.requested.size()));
    w.PutParameters(r.parameters);
  }
  w.Finish();
}

void Encode(const BatchReply& m, std::string* out) {
  Writer w(out, MessageType::kBatchReply);
  w.Put<uint64_t>(m.batch_id);
  w.Put<uint64_t>(m.region_size);
  w.Put<uint32_t>(static_cast<uint32_t>(m.results.size()));
  for (const auto& r : m.results) {
    w.Put<int32_t>(r.code);
    w.PutString(r.message);
    w.Put<uint32_t>(static_cast<uint32_t>(r.outputs.size()));
    for (const auto& o : r.outputs) {
      w.Put<uint32_t>(o.index);
      w.Put<int32_t>(o.datatype);
      w.PutTensor(o.tensor);
    }
  }
  w.Finish();
}

absl::Status Decode(absl::string_view body, LoadMessage* m) {
  Reader r(body);
  if (!r.GetString(&m->name) || !r.Get(&m->version) || !r.GetString(&m->directory) ||
      !r.GetString(&m->version_directory) || !r.GetString(&m->library_path) ||
      !r.GetString(&m->runner) || !r.GetString(&m->default_model_filename) ||
      !r.GetString(&m->config) || !r.Get(&m->first_instance) || !r.Get(&m->instance_count) ||
      !r.Get(&m->allow_config_completion) || !r.Get(&m->max_input_bytes) || !r.done()) {
    return Malformed("load");
  }
  return absl::OkStatus();
}

absl::Status Decode(absl::string_view body, LoadReply* m) {
  Reader r(body);
  if (!r.Get(&m->code) || !r.GetString(&m->message) || !r.Get(&m->pid) ||
      !r.GetString(&m->runner) || !r.GetString(&m->runner_version) ||
      !r.GetString(&m->runner_build) || !r.GetString(&m->runner_abi) ||
      !r.GetPairs(&m->properties) || !r.GetString(&m->completed_config) || !r.done()) {
    return Malformed("load reply");
  }
  return absl::OkStatus();
}

absl::Status Decode(absl::string_view body, BatchMessage* m) {
  Reader r(body);
  uint32_t n;
  if (!r.Get(&m->batch_id) || !r.Get(&m->region_size) || !r.Get(&m->cancel_offset) ||
      !r.Get(&m->outputs_offset) || !r.GetCount(&n, kMaxCount)) {
    return Malformed("batch header");
  }
  m->requests.resize(n);
  for (auto& q : m->requests) {
    uint32_t inputs;
    std::string requested;
    if (!r.Get(&q.rows) || !r.Get(&q.deadline_ns) || !r.GetString(&q.id) ||
        !r.GetCount(&inputs, kMaxCount)) {
      return Malformed("batch request");
    }
    q.inputs.resize(inputs);
    for (auto& t : q.inputs) {
      if (!r.GetTensor(&t)) return Malformed("batch input");
    }
    if (!r.GetString(&requested) || !r.GetParameters(&q.parameters)) {
      return Malformed("batch outputs or parameters");
    }
    q.requested.assign(requested.begin(), requested.end());
  }
  if (!r.done()) return Malformed("trailing bytes after a batch");
  return absl::OkStatus();
}

absl::Status Decode(absl::string_view body, BatchReply* m) {
  Reader r(body);
  uint32_t n;
  if (!r.Get(&m->batch_id) || !r.Get(&m->region_size) || !r.GetCount(&n, kMaxCount)) {
    return Malformed("reply header");
  }
  m->results.resize(n);
  for (auto& res : m->results) {
    uint32_t outputs;
    if (!r.Get(&res.code) || !r.GetString(&res.message) || !r.GetCount(&outputs, kMaxCount)) {
      return Malformed("reply result");
    }
    res.outputs.resize(outputs);
    for (auto& o : res.outputs) {
      if (!r.Get(&o.index) || !r.Get(&o.datatype) || !r.GetTensor(&o.tensor)) {
        return Malformed("reply output");
      }
    }
  }
  if (!r.done()) return Malformed("trailing bytes after a reply");
  return absl::OkStatus();
}

void Encode(const ResponseMessage& m, std::string* out) {
  Writer w(out, MessageType::kResponse);
  w.PutHandle(m.handle);
  w.Put<uint8_t>(m.final);
  w.Put<uint8_t>(m.has_response);
  w.Put<int32_t>(m.code);
  w.PutString(m.message);
  w.PutOutputs(m.outputs);
  w.Put<uint64_t>(m.heap_size);
  w.Finish();
}

void Encode(const AckMessage& m, std::string* out) {
  Writer w(out, MessageType::kAck);
  w.PutHandle(m.handle);
  w.Put<uint8_t>(m.gone);
  w.Finish();
}

void Encode(const CancelMessage& m, std::string* out) {
  Writer w(out, MessageType::kCancel);
  w.PutHandle(m.handle);
  w.Finish();
}

void Encode(const CallMessage& m, std::string* out) {
  Writer w(out, MessageType::kCall);
  w.Put<uint64_t>(m.call_id);
  w.PutString(m.model);
  w.Put<int64_t>(m.version);
  w.PutString(m.id);
  w.PutParameters(m.parameters);
  w.PutNamed(m.inputs);
  w.Put<uint32_t>(static_cast<uint32_t>(m.outputs.size()));
  for (const auto& o : m.outputs) w.PutString(o);
  w.Put<int64_t>(m.deadline_ns);
  w.Put<uint64_t>(m.heap_size);
  w.Finish();
}

void Encode(const CallResultMessage& m, std::string* out) {
  Writer w(out, MessageType::kCallResult);
  w.Put<uint64_t>(m.call_id);
  w.Put<uint8_t>(m.final);
  w.Put<uint8_t>(m.has_response);
  w.Put<int32_t>(m.code);
  w.PutString(m.message);
  w.PutString(m.model_name);
  w.PutString(m.model_version);
  w.PutString(m.id);
  w.PutNamed(m.outputs);
  w.Put<uint64_t>(m.heap_size);
  w.Finish();
}

void Encode(const FreeMessage& m, std::string* out) {
  Writer w(out, MessageType::kFreeResult);
  w.Put<uint32_t>(static_cast<uint32_t>(m.offsets.size()));
  for (uint64_t o : m.offsets) w.Put<uint64_t>(o);
  w.Finish();
}

void Encode(const LogMessage& m, std::string* out) {
  Writer w(out, MessageType::kLog);
  w.Put<int32_t>(m.level);
  w.PutString(m.message);
  w.Finish();
}

void Encode(const MetricMessage& m, std::string* out) {
  Writer w(out, MessageType::kMetric);
  w.Put<uint8_t>(m.op);
  w.Put<uint64_t>(m.id);
  w.Put<uint64_t>(m.family_id);
  w.Put<int32_t>(m.kind);
  w.Put<double>(m.value);
  w.PutString(m.name);
  w.PutString(m.help);
  w.PutPairs(m.labels);
  w.Put<uint32_t>(static_cast<uint32_t>(m.buckets.size()));
  for (double b : m.buckets) w.Put<double>(b);
  w.Finish();
}

absl::Status Decode(absl::string_view body, ResponseMessage* m) {
  Reader r(body);
  if (!r.GetHandle(&m->handle) || !r.Get(&m->final) || !r.Get(&m->has_response) ||
      !r.Get(&m->code) || !r.GetString(&m->message) || !r.GetOutputs(&m->outputs) ||
      !r.Get(&m->heap_size) || !r.done()) {
    return Malformed("response");
  }
  return absl::OkStatus();
}

absl::Status Decode(absl::string_view body, AckMessage* m) {
  Reader r(body);
  if (!r.GetHandle(&m->handle) || !r.Get(&m->gone) || !r.done()) return Malformed("ack");
  return absl::OkStatus();
}

absl::Status Decode(absl::string_view body, CancelMessage* m) {
  Reader r(body);
  if (!r.GetHandle(&m->handle) || !r.done()) return Malformed("cancel");
  return absl::OkStatus();
}

absl::Status Decode(absl::string_view body, CallMessage* m) {
  Reader r(body);
  uint32_t n;
  if (!r.Get(&m->call_id) || !r.GetString(&m->model) || !r.Get(&m->version) ||
      !r.GetString(&m->id) || !r.GetParameters(&m->parameters) || !r.GetNamed(&m->inputs) ||
      !r.GetCount(&n, kMaxCount)) {
    return Malformed("call");
  }
  m->outputs.resize(n);
  for (auto& o : m->outputs) {
    if (!r.GetString(&o)) return Malformed("call outputs");
  }
  if (!r.Get(&m->deadline_ns) || !r.Get(&m->heap_size) || !r.done()) return Malformed("call");
  return absl::OkStatus();
}

absl::Status Decode(absl::string_view body, CallResultMessage* m) {
  Reader r(body);
  if (!r.Get(&m->call_id) || !r.Get(&m->final) || !r.Get(&m->has_response) || !r.Get(&m->code) ||
      !r.GetString(&m->message) || !r.GetString(&m->model_name) ||
      !r.GetString(&m->model_version) || !r.GetString(&m->id) || !r.GetNamed(&m->outputs) ||
      !r.Get(&m->heap_size) || !r.done()) {
    return Malformed("call result");
  }
  return absl::OkStatus();
}

absl::Status Decode(absl::string_view body, FreeMessage* m) {
  Reader r(body);
  uint32_t n;
  if (!r.GetCount(&n, kMaxCount)) return Malformed("free");
  m->offsets.resize(n);
  for (auto& o : m->offsets) {
    if (!r.Get(&o)) return Malformed("free");
  }
  if (!r.done()) return Malformed("free");
  return absl::OkStatus();
}

absl::Status Decode(absl::string_view body, LogMessage* m) {
  Reader r(body);
  if (!r.Get(&m->level) || !r.GetString(&m->message) || !r.done()) return Malformed("log");
  return absl::OkStatus();
}

absl::Status Decode(absl::string_view body, MetricMessage* m) {
  Reader r(body);
  uint32_t n = 0;
  if (!r.Get(&m->op) || !r.Get(&m->id) || !r.Get(&m->family_id) || !r.Get(&m->kind) ||
      !r.Get(&m->value) || !r.GetString(&m->name) || !r.GetString(&m->help) ||
      !r.GetPairs(&m->labels) || !r.GetCount(&n, kMaxCount)) {
    return Malformed("metric");
  }
  m->buckets.clear();
  for (uint32_t i = 0; i < n; ++i) {  // no reserve(n): n is not checked yet
    double b;
    if (!r.Get(&b)) return Malformed("metric");
    m->buckets.push_back(b);
  }
  if (!r.done() || m->op < MetricMessage::kFamilyNew || m->op > MetricMessage::kObserve) {
    return Malformed("metric");
  }
  return absl::OkStatus();
}

ReadOutcome FrameReader::Next(MessageType* type, absl::string_view* body, std::string* error) {
  const size_t have = end_ - begin_;
  if (have < kFrameHeaderSize) return ReadOutcome::kTimeout;
  uint32_t magic, t, size;
  const char* p = buffer_.data() + begin_;
  std::memcpy(&magic, p, 4);
  std::memcpy(&t, p + 4, 4);
  std::memcpy(&size, p + 8, 4);
  if (magic != kFrameMagic || size > kMaxFrameBody) {
    *error = absl::StrCat("bad frame header (magic ", magic, ", size ", size, ")");
    return ReadOutcome::kError;
  }
  if (have < kFrameHeaderSize + size) {
    // Make room for the rest of this frame.
    if (buffer_.size() - begin_ < kFrameHeaderSize + size) {
      if (begin_ > 0) {
        std::memmove(&buffer_[0], buffer_.data() + begin_, have);
        begin_ = 0;
        end_ = have;
      }
      if (buffer_.size() < kFrameHeaderSize + size) buffer_.resize(kFrameHeaderSize + size);
    }
    return ReadOutcome::kTimeout;
  }
  *type = static_cast<MessageType>(t);
  *body = absl::string_view(p + kFrameHeaderSize, size);
  begin_ += kFrameHeaderSize + size;
  return ReadOutcome::kFrame;
}

ReadOutcome FrameReader::Fill(int fd, bool block, std::string* error) {
  if (begin_ == end_) begin_ = end_ = 0;
  if (buffer_.size() < 65536) buffer_.resize(65536);
  if (end_ == buffer_.size()) {
    if (begin_ > 0) {
      std::memmove(&buffer_[0], buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    } else {
      buffer_.resize(buffer_.size() * 2);
    }
  }
  for (;;) {
    const ssize_t n = recv(fd, &buffer_[end_], buffer_.size() - end_, block ? 0 : MSG_DONTWAIT);
    if (n > 0) {
      end_ += static_cast<size_t>(n);
      return ReadOutcome::kFrame;
    }
    if (n == 0) return ReadOutcome::kClosed;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ReadOutcome::kTimeout;
    if (errno == ECONNRESET || errno == EPIPE) return ReadOutcome::kClosed;
    *error = absl::StrCat("reading the runner host events channel: ", std::strerror(errno));
    return ReadOutcome::kError;
  }
}

absl::Status WriteFrame(int fd, absl::string_view frame) {
  const char* p = frame.data();
  size_t left = frame.size();
  while (left > 0) {
    const ssize_t n = send(fd, p, left, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("runner host channel: ", std::strerror(errno)));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

ReadOutcome ReadFrame(int fd, std::string* buffer, MessageType* type, absl::string_view* body,
                      std::string* error) {
  // One frame is outstanding per direction at a time, so whatever is there
  // belongs to this frame: read greedily (usually the whole frame in one
  // call), then the rest.
  if (buffer->size() < 65536) buffer->resize(65536);
  size_t have = 0;
  size_t want = kFrameHeaderSize;
  bool header_done = false;
  for (;;) {
    if (have >= want) {
      if (!header_done) {
        uint32_t magic, t, size;
        std::memcpy(&magic, buffer->data(), 4);
        std::memcpy(&t, buffer->data() + 4, 4);
        std::memcpy(&size, buffer->data() + 8, 4);
        if (magic != kFrameMagic || size > kMaxFrameBody) {
          *error = absl::StrCat("bad frame header (magic ", magic, ", size ", size, ")");
          return ReadOutcome::kError;
        }
        *type = static_cast<MessageType>(t);
        want = kFrameHeaderSize + size;
        header_done = true;
        if (buffer->size() < want) buffer->resize(want);
        continue;
      }
      if (have > want) {
        *error = "the peer sent more than one frame at a time";
        return ReadOutcome::kError;
      }
      break;
    }
    const ssize_t n = recv(fd, &(*buffer)[have], buffer->size() - have, 0);
    if (n == 0) return ReadOutcome::kClosed;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (have == 0) return ReadOutcome::kTimeout;
        continue;
      }
      if (errno == ECONNRESET || errno == EPIPE) return ReadOutcome::kClosed;
      *error = absl::StrCat("reading the runner host channel: ", std::strerror(errno));
      return ReadOutcome::kError;
    }
    have += static_cast<size_t>(n);
  }
  *body = absl::string_view(buffer->data() + kFrameHeaderSize, want - kFrameHeaderSize);
  return ReadOutcome::kFrame;
}

absl::Status CheckBounds(const BatchMessage& m, uint64_t region_size) {
  if (m.region_size > region_size) return Malformed("region larger than mapped");
  if (m.cancel_offset > region_size || m.requests.size() > region_size - m.cancel_offset) {
    return Malformed("cancel flags outside the shared region");
  }
  if (m.outputs_offset > region_size) return Malformed("outputs offset outside the shared region");
  for (const auto& q : m.requests) {
    for (const auto& t : q.inputs) {
      if (!InRegion(t, region_size)) return Malformed("input outside the shared region");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckBounds(const std::vector<BatchReply::Output>& outputs, uint64_t region_size) {
  for (const auto& o : outputs) {
    if (!InRegion(o.tensor, region_size)) return Malformed("output outside the shared heap");
  }
  return absl::OkStatus();
}

absl::Status CheckBounds(const std::vector<NamedTensor>& tensors, uint64_t region_size) {
  for (const auto& t : tensors) {
    if (!InRegion(t.tensor, region_size)) return Malformed("tensor outside the shared heap");
  }
  return absl::OkStatus();
}

absl::Status CheckBounds(const BatchReply& m, uint64_t region_size) {
  for (const auto& r : m.results) {
    for (const auto& o : r.outputs) {
      if (!InRegion(o.tensor, region_size)) return Malformed("output outside the shared region");
    }
  }
  return absl::OkStatus();
}

}  // namespace isolation
}  // namespace torii
