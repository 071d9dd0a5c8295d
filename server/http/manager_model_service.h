// ModelService over the model manager: what the HTTP endpoints answer about
// models (readiness, metadata, configuration, statistics, the repository
// index, load and unload) comes from the same ModelManager, ModelVersion and
// ServerReadiness the gRPC frontend reads, so the two frontends agree.
#ifndef TORII_SERVER_HTTP_MANAGER_MODEL_SERVICE_H_
#define TORII_SERVER_HTTP_MANAGER_MODEL_SERVICE_H_

#include <string>
#include <vector>

#include "model_config.pb.h"
#include "server/http/model_service.h"
#include "server/manager/model_manager.h"
#include "server/manager/server_readiness.h"

namespace torii {
namespace http {

class ManagerModelService final : public ModelService {
 public:
  struct Options {
    ModelManager* manager = nullptr;               // required, outlives this
    const ServerReadiness* readiness = nullptr;    // required, outlives this
    /// Load and Unload allowed (--model-control-mode=explicit); otherwise
    /// they answer UNAVAILABLE, as gRPC's RepositoryModelLoad does.
    bool explicit_model_control = false;
  };

  explicit ManagerModelService(Options options) : options_(options) {}

  bool ServerReady() const override;
  absl::StatusOr<bool> ModelReady(const std::string& name,
                                  const std::string& version) const override;
  absl::StatusOr<ModelMetadata> Metadata(const std::string& name,
                                         const std::string& version) const override;
  absl::StatusOr<std::string> ConfigJson(const std::string& name,
                                         const std::string& version) const override;
  absl::StatusOr<std::vector<ModelStats>> Statistics(const std::string& name,
                                                     const std::string& version) const override;
  std::vector<ModelIndexEntry> Index(bool ready_only) const override;
  absl::Status Load(const std::string& name, const ModelOverride& override) override;
  absl::Status Unload(const std::string& name, bool unload_dependents) override;

 private:
  Options options_;
};

/// The model configuration as Triton's HTTP config endpoint writes it: the
/// protobuf JSON mapping with config.pbtxt's field names, every primitive
/// field present (defaults too), and 64-bit integers as JSON numbers rather
/// than protobuf's strings (Triton's "config version 1").
std::string TritonConfigJson(const inference::ModelConfig& config);

}  // namespace http
}  // namespace torii

#endif  // TORII_SERVER_HTTP_MANAGER_MODEL_SERVICE_H_
