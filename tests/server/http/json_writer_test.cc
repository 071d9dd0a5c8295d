#include "server/http/json_writer.h"

#include <cmath>
#include <limits>

#include <catch2/catch.hpp>

namespace torii {
namespace http {
namespace {

TEST_CASE("JSON writer: nesting, separators and numbers", "[http][json]") {
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("a");
  w.StartArray();
  w.Int(-1);
  w.Uint(std::numeric_limits<uint64_t>::max());
  w.Float(0.1f);
  w.Double(0.1);
  w.Double(1e300);
  w.Bool(true);
  w.Null();
  w.EndArray();
  w.Key("o");
  w.StartObject();
  w.EndObject();
  w.Key("r");
  w.Raw(R"({"x":1})");
  w.EndObject();
  CHECK(out == R"({"a":[-1,18446744073709551615,0.1,0.1,1e+300,true,null],"o":{},"r":{"x":1}})");
}

TEST_CASE("JSON writer: non-finite numbers as NaN and Infinity", "[http][json]") {
  std::string out;
  JsonWriter w(&out);
  w.StartArray();
  w.Float(std::numeric_limits<float>::quiet_NaN());
  w.Double(std::numeric_limits<double>::infinity());
  w.Float(-std::numeric_limits<float>::infinity());
  w.EndArray();
  CHECK(out == "[NaN,Infinity,-Infinity]");
}

TEST_CASE("JSON strings are escaped", "[http][json]") {
  std::string out;
  AppendJsonString(&out, std::string("q\"b\\n\n\t\x01\x1f\xc3\xa9", 11));
  CHECK(out == "\"q\\\"b\\\\n\\n\\t\\u0001\\u001f\xc3\xa9\"");
  CHECK(ErrorJson("bad \"x\"") == R"({"error":"bad \"x\""})");
}

}  // namespace
}  // namespace http
}  // namespace torii
