// libevent evhttp: one event_base per thread on a shared listening socket; answers handed back through a queue and event_active.
#include <event2/event.h>
#include <event2/http.h>
#include <event2/buffer.h>
#include <event2/thread.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <cstdlib>
#include <vector>
#include "common.h"
static Executor* ex;
struct Loop { event_base* base; event* wake; std::mutex mu; std::deque<evhttp_request*> done; };
static void OnWake(evutil_socket_t, short, void* arg) {
  auto* l = static_cast<Loop*>(arg);
  std::deque<evhttp_request*> d; { std::lock_guard<std::mutex> g(l->mu); d.swap(l->done); }
  for (auto* req : d) {
    evbuffer* out = evhttp_request_get_output_buffer(req);
    evbuffer_add(out, Reply1K().data(), Reply1K().size());
    evhttp_send_reply(req, 200, "OK", nullptr);
  }
}
static void Handle(evhttp_request* req, void* arg) {
  auto* l = static_cast<Loop*>(arg);
  if (evhttp_request_get_command(req) == EVHTTP_REQ_GET) { evhttp_send_reply(req, 200, "OK", nullptr); return; }
  ex->Post([l, req]{ { std::lock_guard<std::mutex> g(l->mu); l->done.push_back(req);} event_active(l->wake, EV_READ, 0); });
}
int main(int argc, char** argv) {
  evthread_use_pthreads();
  ex = new Executor;
  int fd = socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0); int one=1; setsockopt(fd,SOL_SOCKET,SO_REUSEADDR,&one,sizeof one);
  sockaddr_in a{}; a.sin_family=AF_INET; a.sin_port=htons(atoi(argv[1])); inet_pton(AF_INET,"127.0.0.1",&a.sin_addr);
  if (bind(fd,(sockaddr*)&a,sizeof a)||listen(fd,1024)) return 1;
  int n = atoi(argv[2]); std::vector<std::thread> ts;
  for (int i=0;i<n;++i) ts.emplace_back([fd]{
    auto* l = new Loop; l->base = event_base_new(); l->wake = event_new(l->base, -1, EV_PERSIST|EV_READ, OnWake, l);
    event_add(l->wake, nullptr);
    evhttp* http = evhttp_new(l->base); evhttp_set_gencb(http, Handle, l); evhttp_accept_socket(http, fd);
    event_base_dispatch(l->base); });
  for (auto& t: ts) t.join();
}
