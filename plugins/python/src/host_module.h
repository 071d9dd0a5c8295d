// _torii_host: the native Python module through which the runner's Python
// half (torii_python_driver.py and triton_python_backend_utils.py) reaches
// the Torii host API. Nothing here is public API for model authors.
//
// Objects (all methods need the GIL, which every C++ caller here holds):
//   Buffer   a bytes-like view of host memory (buffer protocol), read-only for
//            inputs, writable for outputs; counts the views numpy made of it,
//            so the runner can tell when a model kept an input past execute.
//   Model    one loaded model version: names, config, log, provenance,
//            auto-complete (set_config_json), and calls to other models.
//   Batch    the requests of one execute call; dead once execute returns.
//   Sender   answers one request (decoupled models); usable from any thread
//            until its final send.
//   Call     one call to another model: its responses, in order.
//   Metric   a runner-defined metric family or series (ABI 1.3): a host
//            handle, released with the object, inert once the model unloads.
// and the exception HostError(code, message) for errors the host returned.
#ifndef TORII_PLUGINS_PYTHON_HOST_MODULE_H_
#define TORII_PLUGINS_PYTHON_HOST_MODULE_H_

#include <string>
#include <vector>

#include "py_util.h"
#include "torii/runner_abi.h"

namespace torii_python {

/// Creates _torii_host and puts it in sys.modules. GIL held. False with a
/// Python exception set on failure.
bool RegisterHostModule();

/// A new Model object (new reference), or nullptr with an exception set.
PyObject* NewModelObject(const ToriiHostApi* host, ToriiModel* model);
/// Marks the model loaded (set_config_json is refused from then on).
void MarkModelLoaded(PyObject* model);
/// At model unload: further calls log without the model tag and refuse
/// model calls, and the senders of its requests refuse to send (a model
/// thread may still hold one).
void InvalidateModelObject(PyObject* model);

/// A new Batch object (new reference) of the model whose Model object is
/// `model`, or nullptr with an exception set.
PyObject* NewBatchObject(const ToriiHostApi* host, ToriiBatch* batch, PyObject* model);
/// Ends a batch object's life (execute returned). Returns the names of the
/// inputs whose memory a model object still views (numpy arrays kept past
/// execute), so the runner can warn: that memory is reused.
std::vector<std::string> CloseBatchObject(PyObject* batch);

/// Creates a Buffer over `data` (nullptr with an exception set on failure).
/// `owner` (may be null) is kept alive as long as the buffer.
PyObject* NewBufferObject(void* data, size_t size, bool readonly, PyObject* owner);

/// Raises _torii_host.HostError(code, message); returns nullptr.
PyObject* RaiseHostError(int code, const std::string& message);

// dlpack_bridge.cc: the module functions to_dlpack and from_dlpack.
PyObject* ToDlpack(PyObject* self, PyObject* args);
PyObject* FromDlpack(PyObject* self, PyObject* args);

}  // namespace torii_python

#endif  // TORII_PLUGINS_PYTHON_HOST_MODULE_H_
