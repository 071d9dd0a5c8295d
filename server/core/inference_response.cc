#include "server/core/inference_response.h"

namespace torii {

absl::StatusOr<char*> InferenceResponse::AddOutput(std::string name, ToriiDataType datatype,
                                                   Shape shape, size_t byte_size) {
  OutputTensor& out = outputs_.emplace_back();
  out.name = std::move(name);
  out.datatype = datatype;
  out.shape = std::move(shape);
  out.byte_size = byte_size;
  auto buffer = AllocateBuffer(outputs_.size() - 1);
  if (!buffer.ok()) {
    outputs_.pop_back();
    return buffer.status();
  }
  outputs_.back().data = *buffer;
  return *buffer;
}

absl::StatusOr<char*> InferenceResponse::AllocateBuffer(size_t index) {
  // Uninitialised: the writer fills every byte. One byte at least, so an
  // empty tensor still has a non-null address.
  const size_t n = outputs_[index].byte_size;
  owned_.emplace_back(new char[n == 0 ? 1 : n]);
  return owned_.back().get();
}

bool ResponseSink::AwaitCapacity(const InferenceRequest&) { return true; }

std::unique_ptr<InferenceResponse> ResponseSink::NewResponse() {
  return std::make_unique<InferenceResponse>();
}

}  // namespace torii
