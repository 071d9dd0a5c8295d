#include "model_inputs.h"

#include <catch2/catch.hpp>

namespace torii::perf {
namespace {

inference::ModelMetadataResponse Metadata() {
  inference::ModelMetadataResponse m;
  m.set_name("identity");
  auto* in = m.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("FP32");
  in->add_shape(-1);
  in->add_shape(-1);
  return m;
}

TEST_CASE("metadata shapes need --shape for variable dims",
          "[bench][inputs]") {
  auto missing = InputsFromMetadata(Metadata(), {}, 1);
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(std::string(missing.status().message()),
             Catch::Contains("--shape INPUT0"));
  auto given = InputsFromMetadata(Metadata(), {{"INPUT0", {1, 256}}}, 1);
  REQUIRE(given.ok());
  CHECK((*given)[0].shape == std::vector<int64_t>{1, 256});
  CHECK((*given)[0].datatype == "FP32");
}

TEST_CASE("a leading -1 is the batch size", "[bench][inputs]") {
  auto m = Metadata();
  m.mutable_inputs(0)->set_shape(1, 16);
  auto specs = InputsFromMetadata(m, {}, 4);
  REQUIRE(specs.ok());
  CHECK((*specs)[0].shape == std::vector<int64_t>{4, 16});
}

TEST_CASE("no inputs or unknown --shape names are errors", "[bench][inputs]") {
  inference::ModelMetadataResponse empty;
  CHECK_FALSE(InputsFromMetadata(empty, {}, 1).ok());
  std::vector<InputSpec> specs{{"INPUT0", "FP32", {1}}};
  CHECK_FALSE(ApplyShapes(&specs, {{"NOPE", {2}}}).ok());
  REQUIRE(ApplyShapes(&specs, {{"INPUT0", {2}}}).ok());
  CHECK(specs[0].shape == std::vector<int64_t>{2});
}

}  // namespace
}  // namespace torii::perf
