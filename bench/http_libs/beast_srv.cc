// Boost.Beast: one io_context per thread; answers posted back to the connection's executor.
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <cstdlib>
#include <memory>
#include <vector>
#include "common.h"
namespace net = boost::asio; namespace beast = boost::beast; namespace http = beast::http; using tcp = net::ip::tcp;
static Executor* ex;
struct Session : std::enable_shared_from_this<Session> {
  beast::tcp_stream s; beast::flat_buffer buf; http::request<http::string_body> req; http::response<http::string_body> res;
  explicit Session(tcp::socket&& sock) : s(std::move(sock)) { s.socket().set_option(tcp::no_delay(true)); }
  void Read() { req = {}; s.expires_after(std::chrono::seconds(30)); http::async_read(s, buf, req, [self=shared_from_this()](beast::error_code ec, size_t){ if (ec) return; self->OnRead(); }); }
  void OnRead() {
    res = {}; res.version(req.version()); res.keep_alive(req.keep_alive()); res.result(http::status::ok);
    if (req.method() == http::verb::get) { res.prepare_payload(); Write(); return; }
    ex->Post([self=shared_from_this()]{ net::post(self->s.get_executor(), [self]{ self->res.body() = Reply1K(); self->res.set(http::field::content_type, "application/json"); self->res.prepare_payload(); self->Write(); }); });
  }
  void Write() { http::async_write(s, res, [self=shared_from_this()](beast::error_code ec, size_t){ if (ec) return; if (!self->res.keep_alive()) return; self->Read(); }); }
};
int main(int argc, char** argv) {
  ex = new Executor; int n = atoi(argv[2]);
  std::vector<std::unique_ptr<net::io_context>> ios; for (int i=0;i<n;++i) ios.emplace_back(new net::io_context(1));
  net::io_context acc_io(1); tcp::acceptor acc(acc_io, {net::ip::make_address("127.0.0.1"), (unsigned short)atoi(argv[1])});
  size_t next = 0;
  std::function<void()> accept = [&]{ acc.async_accept(*ios[next++ % n], [&](beast::error_code ec, tcp::socket sock){ if (!ec) std::make_shared<Session>(std::move(sock))->Read(); accept(); }); };
  accept();
  std::vector<std::thread> ts; std::vector<net::executor_work_guard<net::io_context::executor_type>> g;
  for (auto& io : ios) { g.emplace_back(io->get_executor()); ts.emplace_back([&io]{ io->run(); }); }
  acc_io.run();
}
