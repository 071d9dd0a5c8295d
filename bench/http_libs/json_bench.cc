// Parses a v2 infer request with FP32 JSON data into raw bytes (RapidJSON in situ, simdjson on-demand, nlohmann) and writes a response (RapidJSON Writer, std::to_chars).
#include <rapidjson/document.h>
#include <rapidjson/writer.h>
#include <rapidjson/stringbuffer.h>
#include <simdjson.h>
#include <nlohmann/json.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
using Clock = std::chrono::steady_clock;
static std::string MakeRequest(size_t n) {
  std::string s = "{\"id\":\"r1\",\"inputs\":[{\"name\":\"INPUT0\",\"shape\":[1," + std::to_string(n) + "],\"datatype\":\"FP32\",\"data\":[";
  for (size_t i = 0; i < n; ++i) { if (i) s += ','; s += std::to_string(i * 0.37f + 0.001f); }
  s += "]}],\"outputs\":[{\"name\":\"OUTPUT0\",\"parameters\":{\"binary_data\":false}}]}";
  return s;
}
static void RapidInsitu(std::string& body, std::vector<float>& out) {
  rapidjson::Document d; d.ParseInsitu(body.data());
  if (d.HasParseError()) abort();
  auto& in = d["inputs"][0]; auto& data = in["data"];
  out.resize(data.Size()); size_t i = 0;
  for (auto& v : data.GetArray()) { if (!v.IsNumber()) abort(); out[i++] = static_cast<float>(v.GetDouble()); }
}
static simdjson::ondemand::parser* sp;
static void Simd(const std::string& padded, size_t len, std::vector<float>& out) {
  auto doc = sp->iterate(padded.data(), len, padded.size());
  auto in = doc["inputs"].at(0);
  std::string_view dt = in.find_field_unordered("datatype").get_string();
  if (dt != "FP32") abort();
  out.clear();
  for (auto v : in.find_field_unordered("data").get_array()) { double x; if (v.get_double().get(x)) abort(); out.push_back(float(x)); }
}
static void Nlohmann(const std::string& body, std::vector<float>& out) {
  auto j = nlohmann::json::parse(body);
  auto& data = j["inputs"][0]["data"];
  out.resize(data.size()); size_t i = 0;
  for (auto& v : data) out[i++] = v.get<float>();
}
static std::string WriteRapid(const std::vector<float>& v) {
  rapidjson::StringBuffer sb; rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject(); w.Key("outputs"); w.StartArray(); w.StartObject(); w.Key("name"); w.String("OUTPUT0"); w.Key("data"); w.StartArray();
  for (float f : v) w.Double(f);
  w.EndArray(); w.EndObject(); w.EndArray(); w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}
static std::string WriteToChars(const std::vector<float>& v) {
  std::string s = "{\"outputs\":[{\"name\":\"OUTPUT0\",\"data\":["; char buf[32];
  for (size_t i = 0; i < v.size(); ++i) { if (i) s += ','; auto r = std::to_chars(buf, buf + 32, v[i]); s.append(buf, r.ptr); }
  s += "]}]}"; return s;
}
template <typename F> double Time(int iters, F f) {
  auto t0 = Clock::now(); for (int i = 0; i < iters; ++i) f();
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / iters;
}
int main() {
  sp = new simdjson::ondemand::parser;
  for (size_t n : {256ul, 1ul << 20}) {
    const std::string req = MakeRequest(n);
    const int iters = n < 1000 ? 20000 : 10;
    std::vector<float> out;
    std::string work;
    double copy = Time(iters, [&] { work = req; });
    double rj = Time(iters, [&] { work = req; RapidInsitu(work, out); }) - copy;
    std::string padded = req; padded.append(simdjson::SIMDJSON_PADDING, ' ');
    double sj = Time(iters, [&] { Simd(padded, req.size(), out); });
    double nl = Time(iters, [&] { Nlohmann(req, out); });
    std::vector<float> vals(n); for (size_t i = 0; i < n; ++i) vals[i] = i * 0.37f + 0.001f;
    double wr = Time(iters, [&] { auto s = WriteRapid(vals); });
    double wt = Time(iters, [&] { auto s = WriteToChars(vals); });
    printf("n=%zu body=%zu B  parse->raw us: rapidjson_insitu=%.2f simdjson_ondemand=%.2f nlohmann=%.2f | write us: rapidjson_writer=%.2f to_chars=%.2f\n",
           n, req.size(), rj, sj, nl, wr, wt);
  }
}
