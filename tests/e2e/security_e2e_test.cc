// TLS, mutual TLS and restricted management RPCs, with certificates made by
// openssl at test time.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/e2e/e2e_util.h"
#include "tests/util/server_process.h"

namespace torii {
namespace testing {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A CA, a server certificate for 127.0.0.1 and a client certificate.
struct Certificates {
  std::string dir;
  Certificates() {
    dir = MakeTempDir("torii-certs-");
    const std::string script =
        "cd " + dir + " && " +
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 "
        "-subj /CN=torii-test-ca && "
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost && "
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' > san.ext && "
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt "
        "-days 1 -extfile san.ext && "
        "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=client && "
        "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 1";
    REQUIRE(std::system(("(" + script + ") > " + dir + "/openssl.log 2>&1").c_str()) == 0);
  }
  ~Certificates() { std::filesystem::remove_all(dir); }
  std::string path(const char* f) const { return dir + "/" + f; }
};

std::shared_ptr<grpc::ChannelCredentials> Tls(const Certificates& c, bool with_client_cert) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = Read(c.path("ca.crt"));
  if (with_client_cert) {
    o.pem_private_key = Read(c.path("client.key"));
    o.pem_cert_chain = Read(c.path("client.crt"));
  }
  return grpc::SslCredentials(o);
}

grpc::Status Live(const std::string& address, std::shared_ptr<grpc::ChannelCredentials> creds) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto stub = inference::GRPCInferenceService::NewStub(grpc::CreateCustomChannel(address, creds, args));
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::milliseconds(3000));
  inference::ServerLiveResponse r;
  return stub->ServerLive(&ctx, {}, &r);
}

TEST_CASE("TLS: clients that trust the CA are served, plaintext clients are not") {
  Certificates certs;
  TempRepository repo;
  ServerProcess::Options o;
  o.repository = repo.path();
  o.credentials = Tls(certs, false);
  o.extra_args = {"--grpc-use-ssl=true", "--grpc-server-cert=" + certs.path("server.crt"),
                  "--grpc-server-key=" + certs.path("server.key")};
  auto server = ServerProcess::Start(o);
  CHECK(Live(server->address(), Tls(certs, false)).ok());
  CHECK_FALSE(Live(server->address(), grpc::InsecureChannelCredentials()).ok());
  inference::ModelInferResponse r;
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::milliseconds(5000));
  REQUIRE(server->Stub()->ModelInfer(&ctx, IdentityRequest({1, 2}), &r).ok());
  CHECK(Fp32Values(r.raw_output_contents(0)) == std::vector<float>{1, 2});
}

TEST_CASE("mutual TLS: a client without a certificate signed by the root is refused") {
  Certificates certs;
  TempRepository repo;
  ServerProcess::Options o;
  o.repository = repo.path();
  o.credentials = Tls(certs, true);
  o.extra_args = {"--grpc-use-ssl-mutual=true", "--grpc-server-cert=" + certs.path("server.crt"),
                  "--grpc-server-key=" + certs.path("server.key"),
                  "--grpc-root-cert=" + certs.path("ca.crt")};
  auto server = ServerProcess::Start(o);
  CHECK(Live(server->address(), Tls(certs, true)).ok());
  CHECK_FALSE(Live(server->address(), Tls(certs, false)).ok());
}

TEST_CASE("a TLS flag without its files is refused at start") {
  TempRepository repo;
  ServerProcess::Options o;
  o.repository = repo.path();
  o.extra_args = {"--grpc-use-ssl=true"};
  CHECK_THROWS_WITH(ServerProcess::Start(o), Catch::Contains("--grpc-server-cert"));
}

TEST_CASE("restricted model-repository RPCs need the configured header") {
  TempRepository repo;
  ServerProcess::Options o;
  o.repository = repo.path();
  o.extra_args = {"--model-control-mode=explicit", "--load-model=*",
                  "--grpc-restricted-protocol=model-repository:admin-key=s3cret"};
  auto server = ServerProcess::Start(o);
  auto stub = server->Stub();
  {
    grpc::ClientContext ctx;
    inference::RepositoryModelUnloadRequest q;
    q.set_model_name("add_sub");
    inference::RepositoryModelUnloadResponse r;
    const grpc::Status s = stub->RepositoryModelUnload(&ctx, q, &r);
    CHECK(s.error_code() == grpc::PERMISSION_DENIED);
    CHECK(s.error_message().find("admin-key") != std::string::npos);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("admin-key", "wrong");
    inference::RepositoryIndexResponse r;
    CHECK(stub->RepositoryIndex(&ctx, {}, &r).error_code() == grpc::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("admin-key", "s3cret");
    inference::RepositoryModelUnloadRequest q;
    q.set_model_name("add_sub");
    inference::RepositoryModelUnloadResponse r;
    CHECK(stub->RepositoryModelUnload(&ctx, q, &r).ok());
  }
  // Inference is not restricted.
  inference::ModelInferResponse r;
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::milliseconds(5000));
  CHECK(stub->ModelInfer(&ctx, IdentityRequest({3}), &r).ok());
}

TEST_CASE("an oversized request gets RESOURCE_EXHAUSTED and the server keeps serving") {
  TempRepository repo;
  auto server = StartServer(repo, {"--max-request-bytes=65536"});
  auto stub = server->Stub();
  inference::ModelInferResponse r;
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx, std::chrono::milliseconds(5000));
    const grpc::Status s = stub->ModelInfer(&ctx, IdentityRequest(std::vector<float>(32768, 1.0f)), &r);
    CHECK(s.error_code() == grpc::RESOURCE_EXHAUSTED);
  }
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::milliseconds(5000));
  CHECK(stub->ModelInfer(&ctx, IdentityRequest({1}), &r).ok());
}

}  // namespace
}  // namespace testing
}  // namespace torii
