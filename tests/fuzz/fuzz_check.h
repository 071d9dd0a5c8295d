// Invariant checks for the fuzz targets. A failed check prints what broke and
// aborts, which libFuzzer reports as a crash and saves the input. Never
// compiled out: these checks are the point of the targets.
#ifndef TORII_TESTS_FUZZ_FUZZ_CHECK_H_
#define TORII_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "\nFUZZ_CHECK failed at %s:%d: %s\n", __FILE__,     \
                   __LINE__, #cond);                                           \
      ::torii_fuzz::PrintContext(__VA_ARGS__);                                 \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

namespace torii_fuzz {

inline void PrintContext() {}
inline void PrintContext(const std::string& context) {
  std::fprintf(stderr, "  context: %s\n", context.c_str());
}

// Reads every byte of [data, data + size) so AddressSanitizer sees an access
// to each one: a view that points past its buffer, or into freed memory, is
// reported here instead of later in a runner.
inline unsigned TouchAll(const char* data, size_t size) {
  unsigned sum = 0;
  const volatile char* p = data;
  for (size_t i = 0; i < size; ++i) sum = sum * 31u + static_cast<unsigned char>(p[i]);
  return sum;
}

}  // namespace torii_fuzz

#endif  // TORII_TESTS_FUZZ_FUZZ_CHECK_H_
