// Loader tests: one broken fixture library per failure.
#include "server/runner/runner_library.h"

#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace torii {
namespace {

std::string Fixture(const std::string& name) {
  return std::string(TORII_FIXTURE_DIR) + "/libtorii_" + name + ".so";
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST_CASE("a good runner loads and reports its provenance") {
  auto lib = RunnerLibrary::Open(std::string(TORII_RUNNER_DIR) + "/libtorii_identity.so");
  REQUIRE(lib.ok());
  const auto& p = (*lib)->provenance();
  CHECK(p.runner == "identity");
  CHECK(p.runner_version == "1.0.0");
  CHECK(p.runner_abi == std::to_string(TORII_RUNNER_ABI_VERSION_MAJOR) + "." +
                            std::to_string(TORII_RUNNER_ABI_VERSION_MINOR));
  CHECK(p.runner_build.find("sdk 0.1.0") != std::string::npos);
}

TEST_CASE("an ABI major mismatch is refused naming both versions") {
  auto lib = RunnerLibrary::Open(Fixture("abi_major_mismatch"));
  REQUIRE_FALSE(lib.ok());
  const std::string msg = Message(lib.status());
  CHECK(msg.find("libtorii_abi_major_mismatch.so") != std::string::npos);
  CHECK(msg.find("ABI 2.0") != std::string::npos);
  CHECK(msg.find("ABI " + std::to_string(TORII_RUNNER_ABI_VERSION_MAJOR) + "." +
                 std::to_string(TORII_RUNNER_ABI_VERSION_MINOR)) != std::string::npos);
}

TEST_CASE("a runner needing a newer ABI minor is refused naming both versions") {
  auto lib = RunnerLibrary::Open(Fixture("abi_newer_minor"));
  REQUIRE_FALSE(lib.ok());
  const std::string msg = Message(lib.status());
  CHECK(msg.find("ABI " + std::to_string(TORII_RUNNER_ABI_VERSION_MAJOR) + "." +
                 std::to_string(TORII_RUNNER_ABI_VERSION_MINOR + 1)) != std::string::npos);
  CHECK(msg.find("implements only ABI") != std::string::npos);
}

TEST_CASE("a missing entry point is refused naming the library and the symbol") {
  auto lib = RunnerLibrary::Open(Fixture("missing_entry"));
  REQUIRE_FALSE(lib.ok());
  const std::string msg = Message(lib.status());
  CHECK(msg.find("libtorii_missing_entry.so") != std::string::npos);
  CHECK(msg.find("torii_runner_instance_execute") != std::string::npos);
}

TEST_CASE("a file that is not a library is refused with dlopen's reason") {
  auto lib = RunnerLibrary::Open("/etc/hostname");
  REQUIRE_FALSE(lib.ok());
  CHECK(Message(lib.status()).find("/etc/hostname") != std::string::npos);
}

TEST_CASE("the cache opens a library once") {
  RunnerLibraryCache cache;
  auto a = cache.Get(std::string(TORII_RUNNER_DIR) + "/libtorii_identity.so");
  auto b = cache.Get(std::string(TORII_RUNNER_DIR) + "/../torii/libtorii_identity.so");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->get() == b->get());
}


TEST_CASE("a library replaced in place is loaded as new code with a private copy") {
  // A model folder's runner library: copy identity there, load it, then
  // overwrite the same path with add_sub. dlopen by path would hand back the
  // old identity handle; the private copy loads the new file.
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/torii-lib-XXXXXX";
  REQUIRE(mkdtemp(dir.data()) != nullptr);
  const std::string path = dir + "/libtorii_custom.so";
  auto copy = [&](const std::string& from) {
    std::ifstream in(from, std::ios::binary);
    std::ofstream out(path + ".tmp", std::ios::binary | std::ios::trunc);
    out << in.rdbuf();
    out.close();
    REQUIRE(std::rename((path + ".tmp").c_str(), path.c_str()) == 0);
  };
  RunnerLibraryCache cache;
  copy(std::string(TORII_RUNNER_DIR) + "/libtorii_identity.so");
  auto first = cache.Get(path, /*private_copy=*/true);
  REQUIRE(first.ok());
  CHECK((*first)->provenance().runner == "identity");
  copy(std::string(TORII_RUNNER_DIR) + "/libtorii_add_sub.so");
  auto second = cache.Get(path, /*private_copy=*/true);
  REQUIRE(second.ok());
  CHECK((*second)->provenance().runner == "add_sub");
  // The same file again shares the loaded handle.
  auto third = cache.Get(path, /*private_copy=*/true);
  REQUIRE(third.ok());
  CHECK(third->get() == second->get());
  std::remove(path.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace torii
