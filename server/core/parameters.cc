#include "server/core/parameters.h"

#include <limits>

namespace torii {

bool Parameter::AsInteger(int64_t* out) const {
  if (is_int64()) {
    *out = as_int64();
    return true;
  }
  if (is_uint64() && as_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    *out = static_cast<int64_t>(as_uint64());
    return true;
  }
  return false;
}

const Parameter* Parameters::Find(absl::string_view name) const {
  for (const auto& e : entries_) {
    if (e.first == name) return &e.second;
  }
  return nullptr;
}

void Parameters::Set(std::string name, Parameter::Value value) {
  for (auto& e : entries_) {
    if (e.first == name) {
      e.second.value = std::move(value);
      return;
    }
  }
  entries_.push_back({std::move(name), Parameter{std::move(value)}});
}

bool Parameters::Erase(absl::string_view name) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->first == name) {
      entries_.erase(it);
      return true;
    }
  }
  return false;
}

}  // namespace torii
