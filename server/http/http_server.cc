// Boost.Beast over Asio: one io_context run by N threads, one strand per
// connection. Request bodies are read into one contiguous, padded buffer (the
// JSON parser reads it in place and binary tensors are viewed in it); response
// bodies are written as a gather list, so binary outputs go out from the
// buffers the runner wrote. A streamed answer (HttpStream: server-sent events)
// is written as chunks, one at a time, in the order they were queued. Why
// Beast: docs/http.md.
#include "server/http/http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/http/json_writer.h"

namespace torii {
namespace http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

// Request body: one std::string grown with kBodyPadding spare bytes, sized
// from Content-Length up front so it is never moved while reading.
struct PaddedStringBody {
  using value_type = std::string;
  static std::uint64_t size(const value_type& body) { return body.size(); }

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(bhttp::header<isRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<std::uint64_t>& length, beast::error_code& ec) {
      ec = {};
      // The parser has already refused a Content-Length over the body limit.
      if (length) body_.reserve(static_cast<size_t>(*length) + kBodyPadding);
    }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      ec = {};
      const size_t n = net::buffer_size(buffers);
      if (body_.capacity() < body_.size() + n + kBodyPadding) {
        // Chunked bodies only: grow geometrically.
        body_.reserve(std::max(body_.capacity() * 2, body_.size() + n + kBodyPadding));
      }
      for (net::const_buffer b : beast::buffers_range_ref(buffers)) {
        body_.append(static_cast<const char*>(b.data()), b.size());
      }
      return n;
    }

    void finish(beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

// Response body: the head string, then the tail pieces, as a gather list.
struct GatherBody {
  struct value_type {
    std::string head;
    std::vector<absl::string_view> tail;
    std::shared_ptr<const void> keep;
  };
  static std::uint64_t size(const value_type& body) {
    uint64_t n = body.head.size();
    for (absl::string_view t : body.tail) n += t.size();
    return n;
  }

  // Every piece at once, so the status line, the headers and the whole body
  // leave in one writev.
  class writer {
   public:
    using const_buffers_type = std::vector<net::const_buffer>;
    template <bool isRequest, class Fields>
    writer(const bhttp::header<isRequest, Fields>&, const value_type& body) : body_(body) {}
    void init(beast::error_code& ec) { ec = {}; }
    boost::optional<std::pair<const_buffers_type, bool>> get(beast::error_code& ec) {
      ec = {};
      if (done_) return boost::none;
      done_ = true;
      const_buffers_type pieces;
      pieces.reserve(1 + body_.tail.size());
      if (!body_.head.empty()) pieces.emplace_back(body_.head.data(), body_.head.size());
      for (absl::string_view t : body_.tail) {
        if (!t.empty()) pieces.emplace_back(t.data(), t.size());
      }
      if (pieces.empty()) return boost::none;
      return std::make_pair(std::move(pieces), false);
    }

   private:
    const value_type& body_;
    bool done_ = false;
  };
};

constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

// Beast reads at most what the read buffer has room for (and never more than
// 64 KiB at a time): a body is read in reads this large, not in ~1 KiB ones.
constexpr size_t kBodyReadChunk = 64 * 1024;

}  // namespace

class Session;

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Options options;
  HttpHandler* handler = nullptr;
  std::shared_ptr<net::io_context> io;
  std::optional<tcp::acceptor> acceptor;
  std::optional<net::steady_timer> accept_retry;
  std::vector<std::thread> threads;

  std::mutex mu;
  bool running = false;
  std::list<std::weak_ptr<Session>> sessions;
  // Set by Shutdown(): connections close after their current answer.
  std::atomic<bool> draining{false};
  std::atomic<int64_t> connections{0};

  void Accept();
};

namespace {

class Responder final : public HttpResponder {
 public:
  explicit Responder(std::shared_ptr<Session> session);
  ~Responder() override;
  void Send(HttpResponse response) override;
  std::shared_ptr<HttpStream> StartStream(HttpResponse head) override;
  bool Gone() const override;

 private:
  std::shared_ptr<Session> session_;
  std::shared_ptr<HttpServer::Impl> server_;
  std::atomic<bool> sent_{false};
  const std::chrono::steady_clock::time_point created_ = std::chrono::steady_clock::now();
};

// The producer's side of a streamed answer. Pieces are counted here (for
// AwaitRoom) and handed to the session's strand, which writes them one by one
// and calls Taken() as each leaves; the session calls MarkGone() when the
// connection ends. Holds the session; the session holds it weakly.
class ChunkStream final : public HttpStream {
 public:
  explicit ChunkStream(std::shared_ptr<Session> session);
  ~ChunkStream() override;
  bool Write(std::string piece) override;
  void End() override;
  bool AwaitRoom(size_t max, Clock::time_point deadline) override;
  bool Gone() const override;

  // From the session's strand (or with the server stopped).
  void Taken();
  void MarkGone();

 private:
  std::shared_ptr<Session> session_;
  std::shared_ptr<HttpServer::Impl> server_;
  mutable std::mutex mu_;  // never held while taking server_->mu
  std::condition_variable room_;
  size_t queued_ = 0;  // handed over, not yet written
  bool gone_ = false;
  bool ended_ = false;
};

}  // namespace

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<HttpServer::Impl> server)
      : server_(std::move(server)), stream_(std::move(socket)) {
    fd_ = stream_.socket().native_handle();
    ++server_->connections;
  }
  ~Session() { --server_->connections; }

  const std::shared_ptr<HttpServer::Impl>& server() const { return server_; }

  void Start() {
    beast::error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

  // From any thread: closes the connection on its strand.
  void CloseAsync() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->Close(); });
  }

  // From any thread (Shutdown): an idle connection closes now, a busy one
  // after its answer.
  void DrainAsync() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->keep_alive_ = false;
      if (self->idle_) self->Close();
    });
  }

  // From any thread, while a request is at the handler: whether the client
  // has gone. No read is pending then, so a peek shows an orderly close
  // (EOF) or a reset without consuming anything; bytes of a pipelined next
  // request mean the client is still there. If the session closes meanwhile
  // the descriptor may be reused, but a closed session is gone anyway, which
  // the second look at closed_ reports.
  bool PeerGone() const {
    if (closed_.load()) return true;
    char c;
    const ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    const int err = errno;
    if (closed_.load()) return true;
    if (n == 0) return true;
    if (n < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) return true;
    return false;
  }

  void WriteAsync(HttpResponse response) {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), r = std::move(response)]() mutable {
                self->Write(std::move(r));
              });
  }

  bool closed() const { return closed_.load(); }

  // From any thread: the streamed answer's head, pieces and end, in order.
  void StartStreamAsync(HttpResponse head, std::shared_ptr<ChunkStream> stream) {
    net::post(stream_.get_executor(), [self = shared_from_this(), h = std::move(head),
                                       s = std::move(stream)]() mutable {
      self->StartStream(std::move(h), s);
    });
  }
  void QueueChunkAsync(std::string piece) {
    net::post(stream_.get_executor(), [self = shared_from_this(), p = std::move(piece)]() mutable {
      self->QueueChunk(std::move(p));
    });
  }
  void EndStreamAsync() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->EndStream(); });
  }

 private:
  void ReadHeader() {
    if (closed_) return;
    if (server_->draining) return Close();
    idle_ = true;
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->header_limit(server_->options.max_header_bytes);
    stream_.expires_after(server_->options.idle_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               self->OnHeader(ec);
                             });
  }

  void OnHeader(beast::error_code ec) {
    idle_ = false;
    if (ec) return OnReadError(ec);
    auto& req = parser_->get();
    auto expect = req.find(bhttp::field::expect);
    if (expect != req.end() && absl::EqualsIgnoreCase(
                                   absl::string_view(expect->value().data(), expect->value().size()),
                                   "100-continue")) {
      // curl and many clients wait for this before sending a large body.
      stream_.expires_after(server_->options.write_timeout);
      net::async_write(stream_, net::buffer(kContinue, sizeof(kContinue) - 1),
                       [self = shared_from_this()](beast::error_code wec, size_t) {
                         if (wec) return self->Close();
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    // Room for large reads of a large body: one system call per 64 KiB rather
    // than per kilobyte (the buffer only stages bytes on their way into the
    // body string).
    if (auto length = parser_->content_length()) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(*length, kBodyReadChunk));
      if (buffer_.capacity() - buffer_.size() < want) buffer_.reserve(buffer_.size() + want);
    }
    stream_.expires_after(server_->options.body_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->OnBody(ec);
                      });
  }

  void OnReadError(beast::error_code ec) {
    // Ends of connections and timeouts close quietly; a request we cannot
    // read gets a reason before the close.
    if (ec == bhttp::error::body_limit) {
      return SendTransportError(413, absl::StrCat("request body is larger than the limit of ",
                                                  server_->options.max_body_bytes,
                                                  " bytes (--max-request-bytes)"));
    }
    if (ec == bhttp::error::header_limit) {
      return SendTransportError(431, absl::StrCat("request headers are larger than the limit of ",
                                                  server_->options.max_header_bytes, " bytes"));
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() && ec != bhttp::error::end_of_stream &&
        ec != bhttp::error::partial_message) {
      return SendTransportError(400, absl::StrCat("malformed HTTP request: ", ec.message()));
    }
    Close();
  }

  void SendTransportError(int status, const std::string& message) {
    HttpResponse r;
    r.status = status;
    r.body = ErrorJson(message);
    r.SetHeader("Content-Type", "application/json");
    r.close = true;
    keep_alive_ = false;
    Write(std::move(r));
  }

  void OnBody(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    auto& msg = parser_->get();
    auto request = std::make_unique<HttpRequest>();
    request->method = std::string(msg.method_string());
    absl::string_view target(msg.target().data(), msg.target().size());
    const size_t q = target.find('?');
    request->path = std::string(target.substr(0, q));
    if (q != absl::string_view::npos) request->query = std::string(target.substr(q + 1));
    request->headers.reserve(std::distance(msg.begin(), msg.end()));
    for (const auto& f : msg) {
      request->headers.emplace_back(
          absl::AsciiStrToLower(absl::string_view(f.name_string().data(), f.name_string().size())),
          std::string(f.value()));
    }
    request->body = std::move(msg.body());
    EnsureBodyPadding(request->body);
    keep_alive_ = msg.keep_alive();
    parser_.reset();
    // An idle keep-alive connection keeps a small read buffer.
    if (buffer_.capacity() > 16 * 1024) buffer_.shrink_to_fit();
    // The answer may take as long as the model takes.
    stream_.expires_never();
    server_->handler->Handle(std::move(request),
                             std::make_shared<Responder>(shared_from_this()));
  }

  void Write(HttpResponse r) {
    if (closed_) return;
    response_.emplace();
    response_->version(11);
    response_->result(static_cast<unsigned>(r.status));
    for (auto& h : r.headers) response_->set(h.first, h.second);
    response_->keep_alive(keep_alive_ && !r.close && !server_->draining);
    response_->body().head = std::move(r.body);
    response_->body().tail = std::move(r.tail);
    response_->body().keep = std::move(r.keep);
    response_->prepare_payload();
    stream_.expires_after(server_->options.write_timeout);
    bhttp::async_write(stream_, *response_,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         self->OnWrite(ec);
                       });
  }

  void OnWrite(beast::error_code ec) {
    const bool keep = response_->keep_alive();
    response_.reset();
    if (ec || !keep) return Close();
    ReadHeader();
  }

  // --- a streamed answer (strand only) ---------------------------------------
  // The head goes out with Transfer-Encoding: chunked; each piece becomes one
  // chunk, written after the one before has left; End() writes the last
  // chunk. Meanwhile the socket is watched for the client closing it.

  void StartStream(HttpResponse h, const std::shared_ptr<ChunkStream>& s) {
    if (closed_) return s->MarkGone();
    out_stream_ = s;
    streaming_ = true;
    stream_head_.emplace();
    stream_head_->version(11);
    stream_head_->result(static_cast<unsigned>(h.status));
    for (auto& f : h.headers) stream_head_->set(f.first, f.second);
    stream_head_->keep_alive(keep_alive_ && !h.close && !server_->draining);
    stream_head_->chunked(true);
    stream_serializer_.emplace(*stream_head_);
    chunk_writing_ = true;
    stream_.expires_after(server_->options.write_timeout);
    bhttp::async_write_header(stream_, *stream_serializer_,
                              [self = shared_from_this()](beast::error_code ec, size_t) {
                                self->OnChunkWritten(ec, /*piece=*/false);
                              });
    WatchPeer();
  }

  void QueueChunk(std::string piece) {
    auto s = out_stream_.lock();
    // An empty chunk would end the body: there is nothing to send anyway.
    if (closed_ || !streaming_ || piece.empty()) {
      if (s != nullptr) s->Taken();
      return;
    }
    chunks_.push_back(std::move(piece));
    WriteNextChunk();
  }

  void EndStream() {
    if (closed_ || !streaming_) return;
    end_pending_ = true;
    WriteNextChunk();
  }

  void WriteNextChunk() {
    if (chunk_writing_ || closed_) return;
    if (!chunks_.empty()) {
      const std::string& piece = chunks_.front();
      chunk_size_line_ = absl::StrCat(absl::Hex(piece.size()), "\r\n");
      const std::array<net::const_buffer, 3> pieces = {
          net::buffer(chunk_size_line_), net::buffer(piece), net::buffer("\r\n", 2)};
      chunk_writing_ = true;
      stream_.expires_after(server_->options.write_timeout);
      net::async_write(stream_, pieces, [self = shared_from_this()](beast::error_code ec, size_t) {
        self->OnChunkWritten(ec, /*piece=*/true);
      });
      return;
    }
    if (!end_pending_) return;
    chunk_writing_ = true;
    stream_.expires_after(server_->options.write_timeout);
    net::async_write(stream_, net::buffer("0\r\n\r\n", 5),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->OnStreamEnd(ec);
                     });
  }

  void OnChunkWritten(beast::error_code ec, bool piece) {
    chunk_writing_ = false;
    if (piece) {
      chunks_.pop_front();
      if (auto s = out_stream_.lock()) s->Taken();
    }
    if (ec) return Close();  // marks the stream gone
    WriteNextChunk();
  }

  void OnStreamEnd(beast::error_code ec) {
    chunk_writing_ = false;
    streaming_ = false;
    end_pending_ = false;
    out_stream_.reset();
    const bool keep = stream_head_->keep_alive() && keep_alive_ && !server_->draining;
    stream_serializer_.reset();
    stream_head_.reset();
    if (ec || !keep) return Close();
    ReadHeader();
  }

  // No read is pending while a stream is written, so a client that closes
  // its connection would go unnoticed until a write failed: wait for the
  // socket to become readable instead. End of file or an error: the client
  // is gone. Bytes: a pipelined next request, the client is still there.
  void WatchPeer() {
    stream_.socket().async_wait(tcp::socket::wait_read,
                                [self = shared_from_this()](beast::error_code ec) {
                                  if (ec || !self->streaming_ || self->closed_) return;
                                  if (self->PeerGone()) self->Close();
                                });
  }

  void Close() {
    if (auto s = out_stream_.lock()) s->MarkGone();
    if (closed_.exchange(true)) return;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  // Declared first: destroyed last, after the socket that belongs to its
  // io_context. Shared, so a responder a handler keeps past Stop() is safe.
  std::shared_ptr<HttpServer::Impl> server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<PaddedStringBody>> parser_;
  std::optional<bhttp::response<GatherBody>> response_;
  // A streamed answer in progress.
  std::weak_ptr<ChunkStream> out_stream_;
  std::optional<bhttp::response<bhttp::empty_body>> stream_head_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> stream_serializer_;
  std::deque<std::string> chunks_;  // the front one is being written
  std::string chunk_size_line_;
  bool streaming_ = false;
  bool chunk_writing_ = false;
  bool end_pending_ = false;
  bool keep_alive_ = true;
  bool idle_ = false;  // waiting for a request to start (strand only)
  int fd_ = -1;        // for PeerGone(); fixed at construction
  std::atomic<bool> closed_{false};
};

namespace {

Responder::Responder(std::shared_ptr<Session> session)
    : session_(std::move(session)), server_(session_->server()) {}

Responder::~Responder() {
  // A handler that never answers must not leave the client hanging.
  if (!sent_.load()) {
    std::lock_guard<std::mutex> lock(server_->mu);
    if (server_->running) session_->CloseAsync();
  }
}

void Responder::Send(HttpResponse response) {
  if (sent_.exchange(true)) return;
  std::lock_guard<std::mutex> lock(server_->mu);
  // After Stop() nothing runs the io_context any more: drop the answer.
  if (!server_->running) return;
  session_->WriteAsync(std::move(response));
}

std::shared_ptr<HttpStream> Responder::StartStream(HttpResponse head) {
  if (sent_.exchange(true)) return nullptr;
  auto stream = std::make_shared<ChunkStream>(session_);
  std::lock_guard<std::mutex> lock(server_->mu);
  if (!server_->running) {
    stream->MarkGone();
    return stream;
  }
  session_->StartStreamAsync(std::move(head), stream);
  return stream;
}

bool Responder::Gone() const {
  if (sent_.load()) return false;  // answered: nothing left to cancel
  // A request asked about within a millisecond of arriving is not worth a
  // system call: running it is cheaper than noticing a client that left
  // that fast. Later (a queued request) the socket is looked at.
  if (std::chrono::steady_clock::now() - created_ < std::chrono::milliseconds(1)) return false;
  {
    std::lock_guard<std::mutex> lock(server_->mu);
    if (!server_->running) return true;
  }
  return session_->PeerGone();
}

ChunkStream::ChunkStream(std::shared_ptr<Session> session)
    : session_(std::move(session)), server_(session_->server()) {}

ChunkStream::~ChunkStream() {
  bool ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ended = ended_;
  }
  // A body that was never ended cannot be completed: close the connection.
  if (!ended) {
    std::lock_guard<std::mutex> lock(server_->mu);
    if (server_->running) session_->CloseAsync();
  }
}

bool ChunkStream::Write(std::string piece) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (gone_ || ended_) return false;
    ++queued_;
  }
  std::lock_guard<std::mutex> lock(server_->mu);
  if (!server_->running) {
    MarkGone();
    return false;
  }
  session_->QueueChunkAsync(std::move(piece));
  return true;
}

void ChunkStream::End() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) return;
    ended_ = true;
  }
  std::lock_guard<std::mutex> lock(server_->mu);
  if (server_->running) session_->EndStreamAsync();
}

bool ChunkStream::AwaitRoom(size_t max, Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  auto room = [&] { return gone_ || queued_ < max; };
  if (deadline == Clock::time_point::max()) {
    room_.wait(lock, room);
  } else if (!room_.wait_until(lock, deadline, room)) {
    return false;
  }
  return !gone_;
}

bool ChunkStream::Gone() const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (gone_) return true;
  }
  {
    std::lock_guard<std::mutex> lock(server_->mu);
    if (!server_->running) return true;
  }
  return session_->PeerGone();
}

void ChunkStream::Taken() {
  std::lock_guard<std::mutex> lock(mu_);
  if (queued_ > 0) --queued_;
  room_.notify_all();
}

void ChunkStream::MarkGone() {
  std::lock_guard<std::mutex> lock(mu_);
  gone_ = true;
  room_.notify_all();
}

}  // namespace

void HttpServer::Impl::Accept() {
  acceptor->async_accept(net::make_strand(*io), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors and similar: back off instead of spinning.
      accept_retry->expires_after(std::chrono::milliseconds(50));
      accept_retry->async_wait([this](beast::error_code wec) {
        if (!wec) Accept();
      });
      return;
    }
    auto session = std::make_shared<Session>(std::move(socket), shared_from_this());
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!running) return;
      sessions.remove_if([](const std::weak_ptr<Session>& s) { return s.expired(); });
      sessions.push_back(session);
    }
    session->Start();
    Accept();
  });
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const Options& options,
                                                              HttpHandler* handler) {
  if (options.threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("HTTP thread count must be at least 1, got ", options.threads));
  }
  auto impl = std::make_shared<Impl>();
  impl->options = options;
  impl->handler = handler;
  impl->io = std::make_shared<net::io_context>(options.threads);
  const std::string where = absl::StrCat(options.address, ":", options.port);

  beast::error_code ec;
  tcp::resolver resolver(*impl->io);
  auto endpoints = resolver.resolve(options.address, std::to_string(options.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot serve HTTP on ", where, ": the address does not resolve (", ec.message(), ")"));
  }
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  impl->acceptor.emplace(*impl->io);
  impl->accept_retry.emplace(*impl->io);
  tcp::acceptor& acceptor = *impl->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  // SO_REUSEADDR only lets a restarted server bind over TIME_WAIT sockets; a
  // port another process listens on still fails to bind (no SO_REUSEPORT).
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(1024, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve HTTP on ", where, ": ", ec.message(),
        ec == net::error::address_in_use
            ? " (another process listens there; stop it or choose another --http-port)"
            : ""));
  }

  std::unique_ptr<HttpServer> server(new HttpServer());
  server->port_ = acceptor.local_endpoint().port();
  impl->running = true;
  impl->Accept();
  for (int i = 0; i < options.threads; ++i) {
    impl->threads.emplace_back([io = impl->io] { io->run(); });
  }
  server->impl_ = std::move(impl);
  return server;
}

int64_t HttpServer::open_connections() const {
  return impl_ == nullptr ? 0 : impl_->connections.load();
}

void HttpServer::Shutdown(std::chrono::milliseconds grace) {
  if (impl_ == nullptr) return;
  std::vector<std::weak_ptr<Session>> open;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->running) return;
    impl_->draining = true;
    open.assign(impl_->sessions.begin(), impl_->sessions.end());
  }
  net::post(impl_->acceptor->get_executor(), [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor->close(ignored);
    impl->accept_retry->cancel();
  });
  for (auto& w : open) {
    if (auto s = w.lock()) s->DrainAsync();
  }
  const auto deadline = std::chrono::steady_clock::now() + grace;
  auto all_closed = [&] {
    for (auto& w : open) {
      auto s = w.lock();
      if (s != nullptr && !s->closed()) return false;
    }
    return true;
  };
  while (!all_closed() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Stop();
}

void HttpServer::Stop() {
  if (impl_ == nullptr) return;
  std::vector<std::shared_ptr<Session>> open;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->running) return;
    impl_->running = false;
    for (auto& w : impl_->sessions) {
      if (auto s = w.lock()) open.push_back(std::move(s));
    }
    impl_->sessions.clear();
  }
  // Sessions first: a session waiting for its handler has no operation
  // pending, so once the listener closes the threads could run out of work
  // before a close posted after it ever runs.
  for (auto& s : open) s->CloseAsync();
  open.clear();
  net::post(impl_->acceptor->get_executor(), [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor->close(ignored);
    impl->accept_retry->cancel();
  });
  // With the listener and every socket closed the threads run out of work.
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

HttpServer::~HttpServer() { Stop(); }

}  // namespace http
}  // namespace torii
