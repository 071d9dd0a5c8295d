#include "http_transport.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"

namespace torii::perf {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

absl::StatusOr<std::pair<std::string, std::string>> SplitUrl(const std::string& url) {
  std::string u = url;
  if (u.rfind("http://", 0) == 0) u = u.substr(7);
  const size_t colon = u.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == u.size()) {
    return absl::InvalidArgumentError(absl::StrCat("--url '", url, "' is not HOST:PORT"));
  }
  return std::make_pair(u.substr(0, colon), u.substr(colon + 1));
}

}  // namespace

struct HttpTransport::Impl {
  net::io_context io;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  tcp::resolver::results_type endpoints;
};

namespace {

// One keep-alive connection; one request at a time. Everything runs on the
// connection's strand.
class HttpSlot final : public Slot {
 public:
  HttpSlot(HttpTransport::Impl* transport, LoadGenerator* gen,
           const std::vector<std::string>* requests)
      : transport_(transport),
        gen_(gen),
        requests_(requests),
        strand_(net::make_strand(transport->io)),
        socket_(strand_) {
    // Beast reads at most what the buffer has room for: large answers in
    // 64 KiB reads, not 1 KiB ones.
    buffer_.reserve(64 * 1024);
  }

  bool Send(size_t index, Clock::time_point start) override {
    net::post(strand_, [this, index, start] {
      start_ = start;
      request_ = &(*requests_)[index];
      busy_ = true;
      if (!socket_.is_open()) return Connect();
      Write();
    });
    return true;
  }

  void Retire() override {
    net::post(strand_, [this] {
      retired_ = true;
      beast::error_code ignored;
      socket_.shutdown(tcp::socket::shutdown_both, ignored);
      socket_.close(ignored);
      // Finished only once nothing of this slot is pending on the strand.
      net::post(strand_, [this] { gen_->OnSlotFinished(); });
    });
  }

  void Cancel() override {
    net::post(strand_, [this] {
      beast::error_code ignored;
      socket_.close(ignored);
    });
  }

 private:
  void Connect() {
    net::async_connect(socket_, transport_->endpoints,
                       [this](beast::error_code ec, const tcp::endpoint&) {
                         if (ec) return Fail("UNAVAILABLE", "connect: " + ec.message());
                         socket_.set_option(tcp::no_delay(true), ec);
                         Write();
                       });
  }

  void Write() {
    net::async_write(socket_, net::buffer(*request_), [this](beast::error_code ec, size_t) {
      if (ec) return Fail("UNAVAILABLE", "write: " + ec.message());
      parser_.emplace();
      parser_->body_limit(boost::none);
      bhttp::async_read(socket_, buffer_, *parser_, [this](beast::error_code rec, size_t) {
        OnResponse(rec);
      });
    });
  }

  void OnResponse(beast::error_code ec) {
    if (ec) return Fail("UNAVAILABLE", "read: " + ec.message());
    auto& res = parser_->get();
    const unsigned status = res.result_int();
    const bool keep = res.keep_alive();
    std::string body = status == 200 ? std::string() : std::move(res.body());
    parser_.reset();
    if (!keep) Close();
    busy_ = false;
    if (status == 200) {
      gen_->OnComplete(this, start_, true, "OK", "");
    } else {
      gen_->OnComplete(this, start_, false, absl::StrCat("HTTP ", status), body);
    }
  }

  void Fail(const std::string& code, const std::string& message) {
    Close();
    if (!busy_ || retired_) return;
    busy_ = false;
    gen_->OnComplete(this, start_, false, code, message);
  }

  void Close() {
    beast::error_code ignored;
    socket_.close(ignored);
    buffer_.clear();
  }

  HttpTransport::Impl* const transport_;
  LoadGenerator* const gen_;
  const std::vector<std::string>* const requests_;
  net::strand<net::io_context::executor_type> strand_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  const std::string* request_ = nullptr;
  Clock::time_point start_;
  bool busy_ = false;
  bool retired_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpTransport>> HttpTransport::Create(const std::string& url,
                                                                      int threads,
                                                                      int64_t connect_timeout_ms) {
  auto hp = SplitUrl(url);
  if (!hp.ok()) return hp.status();
  std::unique_ptr<HttpTransport> t(new HttpTransport());
  t->impl_ = std::make_unique<Impl>();
  beast::error_code ec;
  tcp::resolver resolver(t->impl_->io);
  t->impl_->endpoints = resolver.resolve(hp->first, hp->second, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot resolve ", url, ": ", ec.message()));
  auto probe = HttpGet(url, "/v2/health/live", connect_timeout_ms);
  if (!probe.ok()) return probe.status();
  t->impl_->work.emplace(net::make_work_guard(t->impl_->io));
  for (int i = 0; i < std::max(1, threads); ++i) {
    t->impl_->threads.emplace_back([io = &t->impl_->io] { io->run(); });
  }
  return t;
}

HttpTransport::~HttpTransport() {
  if (impl_ == nullptr) return;
  impl_->work.reset();
  impl_->io.stop();
  for (auto& th : impl_->threads) th.join();
}

std::unique_ptr<Slot> HttpTransport::NewSlot(LoadGenerator* gen,
                                             const std::vector<std::string>* requests) {
  return std::make_unique<HttpSlot>(impl_.get(), gen, requests);
}

absl::StatusOr<std::pair<int, std::string>> HttpGet(const std::string& url,
                                                     const std::string& path,
                                                     int64_t timeout_ms) {
  auto hp = SplitUrl(url);
  if (!hp.ok()) return hp.status();
  net::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code ec;
  tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(hp->first, hp->second, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot resolve ", url, ": ", ec.message()));
  bhttp::request<bhttp::empty_body> req(bhttp::verb::get, path, 11);
  req.set(bhttp::field::host, hp->first + ":" + hp->second);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  stream.expires_after(std::chrono::milliseconds(timeout_ms));
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
    if (e) {
      ec = e;
      return;
    }
    bhttp::async_write(stream, req, [&](beast::error_code we, size_t) {
      if (we) {
        ec = we;
        return;
      }
      bhttp::async_read(stream, buffer, res, [&](beast::error_code re, size_t) { ec = re; });
    });
  });
  io.run();
  if (ec) {
    return absl::UnavailableError(absl::StrCat("GET http://", url, path, " failed: ", ec.message()));
  }
  return std::make_pair(static_cast<int>(res.result_int()), std::move(res.body()));
}

}  // namespace torii::perf
