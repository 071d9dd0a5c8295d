// The log of a model loaded through the SDK's fake host
// (torii/testing/fake_host.h), for runner tests.
#ifndef TORII_TESTS_UTIL_FAKE_MODEL_LOG_H_
#define TORII_TESTS_UTIL_FAKE_MODEL_LOG_H_

#include <string>

#include "torii/testing/fake_host.h"

namespace torii {
namespace testing {

/// Whether any line the model logged contains `text`.
inline bool LogContains(const FakeModel& model, const std::string& text) {
  for (const auto& line : model.log()) {
    if (line.find(text) != std::string::npos) return true;
  }
  return false;
}

/// Every line the model logged, each ended by '\n'.
inline std::string JoinedLog(const FakeModel& model) {
  std::string all;
  for (const auto& line : model.log()) all += line + "\n";
  return all;
}

}  // namespace testing
}  // namespace torii

#endif  // TORII_TESTS_UTIL_FAKE_MODEL_LOG_H_
