// libevhtp (Triton's library): pause the request, answer from the scheduler thread via evthr_defer.
#include <evhtp.h>
#include <cstdlib>
#include "common.h"
static Executor* ex;
struct Ctx { evhtp_request_t* req; evthr_t* thr; };
static void Reply(evthr_t*, void* arg, void*) {
  auto* c = static_cast<Ctx*>(arg);
  evbuffer_add(c->req->buffer_out, Reply1K().data(), Reply1K().size());
  evhtp_send_reply(c->req, EVHTP_RES_OK);
  evhtp_request_resume(c->req);
  delete c;
}
static void Handle(evhtp_request_t* req, void*) {
  if (req->method == htp_method_GET) { evhtp_send_reply(req, EVHTP_RES_OK); return; }
  auto* c = new Ctx{req, evhtp_request_get_connection(req)->thread};
  size_t n = evbuffer_get_length(req->buffer_in); (void)n;
  evhtp_request_pause(req);
  ex->Post([c]{ evthr_defer(c->thr, Reply, c); });
}
int main(int argc, char** argv) {
  ex = new Executor;
  evbase_t* base = event_base_new();
  evhtp_t* htp = evhtp_new(base, nullptr);
  evhtp_enable_flag(htp, EVHTP_FLAG_ENABLE_NODELAY);
  evhtp_set_gencb(htp, Handle, nullptr);
  evhtp_use_threads_wexit(htp, nullptr, nullptr, atoi(argv[2]), nullptr);
  if (evhtp_bind_socket(htp, "127.0.0.1", atoi(argv[1]), 1024) != 0) return 1;
  event_base_loop(base, 0);
}
