"""The Python half of Torii's Python runner (internal; not for model code).

libtorii_python.so starts the interpreter and calls, for each model version:
    load_model(native)              -> LoadedModel   (torii_runner_model_load)
    LoadedModel.create_instance(i)  -> Instance      (torii_runner_instance_create)
    Instance.execute(batch)                          (torii_runner_instance_execute)
    Instance.destroy(), LoadedModel.unload()
`native` and `batch` are _torii_host objects over the host API. Errors meant
for the host are raised as RunnerError(code, message), with gRPC codes; the
traceback, when there is one, has been logged already.
"""

import asyncio
import copy
import hashlib
import importlib.util
import inspect
import io
import json
import math
import os
import platform
import re
import sys
import threading
import traceback
import types

import numpy as np

import _torii_host as _host
import triton_python_backend_utils as pb

# gRPC status codes (ToriiStatusCode).
OK, INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, UNIMPLEMENTED, INTERNAL = 0, 3, 5, 9, 12, 13
LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_VERBOSE = 0, 1, 2, 3


class RunnerError(Exception):
    """An error for the host: a status code and the message a user reads."""

    def __init__(self, code, message):
        super().__init__(message)
        self.torii_code = code
        self.torii_message = message


# ---------------------------------------------------------------------------
# Which model is speaking (log tags, calls to other models)
# ---------------------------------------------------------------------------

_local = threading.local()
_models = []  # LoadedModel, in load order
_models_lock = threading.Lock()


class _Speaking:
    """Makes `model` the current model of this thread for a scope."""

    __slots__ = ("model", "previous")

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.previous = getattr(_local, "model", None)
        _local.model = self.model

    def __exit__(self, *exc):
        _local.model = self.previous
        return False


def _current_model():
    m = getattr(_local, "model", None)
    if m is not None:
        return m
    # A thread the model started: normally the process runs one model.
    with _models_lock:
        return _models[-1] if _models else None


def current_native_model():
    m = _current_model()
    return m.native if m is not None else None


def current_model_dir():
    m = _current_model()
    return m.version_directory if m is not None else os.getcwd()


# ---------------------------------------------------------------------------
# stdout / stderr into the server log
# ---------------------------------------------------------------------------

class _LogStream(io.TextIOBase):
    """A text stream that sends each line to the server log, tagged with the
    current model (print() and tracebacks of model threads land here)."""

    def __init__(self, level, original):
        super().__init__()
        self._level = level
        self._original = original
        self._partial = {}  # thread id -> text without its newline yet
        self._lock = threading.Lock()

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "replace"

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        if self._original is not None:
            return self._original.fileno()
        raise io.UnsupportedOperation("fileno")

    def write(self, s):
        if not isinstance(s, str):
            s = str(s)
        tid = threading.get_ident()
        with self._lock:
            text = self._partial.pop(tid, "") + s
            lines = text.split("\n")
            if lines[-1]:
                self._partial[tid] = lines[-1]
        for line in lines[:-1]:
            self._emit(line)
        return len(s)

    def flush(self):
        tid = threading.get_ident()
        with self._lock:
            text = self._partial.pop(tid, "")
        if text:
            self._emit(text)

    def _emit(self, line):
        line = line.rstrip("\r")
        native = current_native_model()
        if native is not None:
            native.log(self._level, line)
        elif self._original is not None:
            self._original.write(line + "\n")
            self._original.flush()


def _capture_std_streams():
    if not isinstance(sys.stdout, _LogStream):
        sys.stdout = _LogStream(LOG_INFO, sys.__stdout__)
    if not isinstance(sys.stderr, _LogStream):
        sys.stderr = _LogStream(LOG_WARNING, sys.__stderr__)


_capture_std_streams()


# ---------------------------------------------------------------------------
# Config: the host's JSON in the shape Triton's models read
# ---------------------------------------------------------------------------

# int64 fields of model_config.proto: protobuf's JSON writes them as strings;
# Triton hands them to models as numbers.
_INT64_KEYS = {"dims", "shape", "versions", "device_id", "default_timeout_microseconds",
               "max_queue_delay_microseconds", "priority_levels", "default_priority_level",
               "max_sequence_idle_microseconds", "model_version"}
_INT_TEXT = re.compile(r"-?\d+\Z")


def _fix_ints(value, key=None):
    if isinstance(value, dict):
        return {k: _fix_ints(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_fix_ints(v, key) for v in value]
    if isinstance(value, str) and key in _INT64_KEYS and _INT_TEXT.match(value):
        return int(value)
    return value


def _with_defaults(config):
    """Adds the fields protobuf's JSON leaves out when they hold their
    default, as Triton's model config JSON has them."""
    config.setdefault("name", "")
    config.setdefault("platform", "")
    config.setdefault("backend", "")
    config.setdefault("max_batch_size", 0)
    config.setdefault("input", [])
    config.setdefault("output", [])
    config.setdefault("parameters", {})
    for i in config["input"]:
        i.setdefault("data_type", "TYPE_INVALID")
        i.setdefault("format", "FORMAT_NONE")
        i.setdefault("dims", [])
        i.setdefault("is_shape_tensor", False)
        i.setdefault("allow_ragged_batch", False)
        i.setdefault("optional", False)
    for o in config["output"]:
        o.setdefault("data_type", "TYPE_INVALID")
        o.setdefault("dims", [])
        o.setdefault("label_filename", "")
        o.setdefault("is_shape_tensor", False)
    return config


_TOP_DEFAULTS = {"platform": "", "backend": "", "max_batch_size": 0, "input": [], "output": [],
                 "parameters": {}}
_INPUT_DEFAULTS = {"data_type": "TYPE_INVALID", "format": "FORMAT_NONE", "dims": [],
                   "is_shape_tensor": False, "allow_ragged_batch": False, "optional": False}
_OUTPUT_DEFAULTS = {"data_type": "TYPE_INVALID", "dims": [], "label_filename": "",
                    "is_shape_tensor": False}


def _without_defaults(config):
    """The config without fields that hold protobuf's default value: what
    the host gets back from auto-complete (the same config to protobuf, and
    no field the model did not set appears to change)."""
    def strip(d, defaults):
        return {k: v for k, v in d.items() if not (k in defaults and v == defaults[k])}
    out = strip(config, _TOP_DEFAULTS)
    for kind, defaults in (("input", _INPUT_DEFAULTS), ("output", _OUTPUT_DEFAULTS)):
        if kind in out:
            out[kind] = [strip(t, defaults) for t in out[kind]]
    return out


def _read_config(native):
    text = native.config_json() or "{}"
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise RunnerError(INTERNAL, "the server's model config is not JSON: %s" % e)
    return _with_defaults(_fix_ints(raw))


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

_module_counter = [0]


def _log_traceback(native, what, exc):
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    native.log(LOG_ERROR, "%s\n%s" % (what, text))


def _error_text(exc):
    message = str(exc)
    name = type(exc).__name__
    return "%s: %s" % (name, message) if message else name


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_PRIVATE_MODULES = {"triton_python_backend_utils", "torii_python_driver"}


def _package_versions():
    """name==version of the non-standard top-level packages imported so far."""
    try:
        import importlib.metadata as metadata
    except ImportError:  # pragma: no cover
        metadata = None
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    found = {}
    for name, module in list(sys.modules.items()):
        if ("." in name or name.startswith("_") or name in stdlib or name in _PRIVATE_MODULES
                or module is None):
            continue
        version = getattr(module, "__version__", None)
        if not isinstance(version, str):
            version = None
            if metadata is not None:
                try:
                    version = metadata.version(name)
                except Exception:  # noqa: BLE001 (no distribution of that name)
                    version = None
        if version:
            found[name] = version
    return " ".join("%s==%s" % kv for kv in sorted(found.items()))


class LoadedModel:
    """One model version: its module, class and completed config."""

    def __init__(self, native):
        self.native = native
        self.name = native.name()
        self.version = native.version()
        self.directory = native.directory()
        self.version_directory = native.version_directory()
        self.module = None
        self.module_names = []
        self.added_paths = []
        self.instances = 0
        self.reported_packages = None
        with _Speaking(self):
            self._load()

    # -- steps -------------------------------------------------------------

    def _load(self):
        config = _read_config(self.native)
        filename = config.get("default_model_filename") or "model.py"
        self.model_file = os.path.join(self.version_directory, filename)
        if not os.path.isfile(self.model_file):
            raise RunnerError(NOT_FOUND, "model file %s does not exist (the Python runner runs "
                                         "<version>/model.py, or the config's "
                                         "default_model_filename)" % self.model_file)
        if not filename.endswith(".py"):
            raise RunnerError(INVALID_ARGUMENT, "model file %s must end with .py" % self.model_file)
        self._import()
        cls = getattr(self.module, "TritonPythonModel", None)
        if not isinstance(cls, type):
            raise RunnerError(INVALID_ARGUMENT, "%s defines no class TritonPythonModel (every "
                                                "Python model must)" % self.model_file)
        self.cls = cls
        if hasattr(cls, "auto_complete_config"):
            config = self._auto_complete(config)
        self._configure(config)
        self._report_provenance()

    def _import(self):
        for path in (self.version_directory, self.directory):
            if path not in sys.path:
                sys.path.append(path)
                self.added_paths.append(path)
        # A package per model version, so helper modules beside model.py can be
        # imported relatively (from . import helper) and two models never share
        # a module name.
        _module_counter[0] += 1
        package = "_torii_model_%d" % _module_counter[0]
        pkg = types.ModuleType(package)
        pkg.__path__ = [self.version_directory]
        sys.modules[package] = pkg
        stem = os.path.splitext(os.path.basename(self.model_file))[0]
        name = "%s.%s" % (package, stem)
        self.module_names = [package, name]
        try:
            spec = importlib.util.spec_from_file_location(name, self.model_file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except BaseException as e:  # noqa: BLE001 (SystemExit too: never leave the host)
            self._forget_modules()
            _log_traceback(self.native, "%s does not import:" % self.model_file, e)
            hint = ""
            if isinstance(e, ModuleNotFoundError):
                hint = (" (install the package for %s, or name an environment that has it with "
                        "the EXECUTION_ENV_PATH parameter)" % sys.executable)
            raise RunnerError(INVALID_ARGUMENT, "%s does not import: %s%s" %
                              (self.model_file, _error_text(e), hint))
        self.module = module

    def _auto_complete(self, config):
        before = copy.deepcopy(config)
        try:
            completed = self.cls.auto_complete_config(pb.ModelConfig(copy.deepcopy(config)))
        except BaseException as e:  # noqa: BLE001
            _log_traceback(self.native, "auto_complete_config failed:", e)
            raise RunnerError(INVALID_ARGUMENT, "auto_complete_config failed: %s" % _error_text(e))
        if not isinstance(completed, pb.ModelConfig):
            raise RunnerError(INVALID_ARGUMENT,
                              "auto_complete_config function in model '%s' must return a valid "
                              "pb.ModelConfig object, got %s" % (self.name,
                                                                 type(completed).__name__))
        after = _without_defaults(completed.as_dict())
        if after == _without_defaults(before):
            return config
        try:
            self.native.set_config_json(json.dumps(after))
        except _host.HostError as e:
            raise RunnerError(INVALID_ARGUMENT if e.args[0] != UNIMPLEMENTED else
                              FAILED_PRECONDITION,
                              "the config completed by auto_complete_config was refused: %s"
                              % e.args[1])
        self.native.log(LOG_INFO, "auto_complete_config completed the model config")
        # Read back what the host made of it.
        return _read_config(self.native)

    def _configure(self, config):
        self.config = config
        self.config_json = json.dumps(config)
        self.max_batch_size = int(config.get("max_batch_size", 0))
        self.decoupled = pb.using_decoupled_model_transaction_policy(config)
        self.outputs_config = {o["name"]: o for o in config.get("output", [])}
        self.output_names = [o["name"] for o in config.get("output", [])]
        # The datatype code each output is declared with (None: not a known
        # type), so a response in the declared dtype is checked without
        # reading the config per request.
        self.output_codes = {o["name"]: pb._CODE_OF_CONFIG_TYPE.get(o.get("data_type"))
                             for o in config.get("output", [])}
        if self.decoupled and not self.native.host_has("senders"):
            raise RunnerError(FAILED_PRECONDITION,
                              "model_transaction_policy { decoupled: true } needs a server with "
                              "runner ABI 1.2 (response senders); this one has %d.%d"
                              % self.native.host_abi())

    def _report_provenance(self):
        report = self.native.report_property
        report("python_version", platform.python_version())
        report("python_executable", sys.executable or "")
        report("python_prefix", sys.prefix)
        report("model_file", os.path.basename(self.model_file))
        report("model_sha256", _sha256(self.model_file))

    def report_packages(self):
        packages = _package_versions()
        if packages != self.reported_packages:
            self.reported_packages = packages
            self.native.report_property("python_packages", packages)

    # -- lifecycle ---------------------------------------------------------

    def create_instance(self, index):
        inst = Instance(self, index)
        self.instances += 1
        with _models_lock:
            if self not in _models:
                _models.append(self)
        return inst

    def _forget_modules(self):
        for name in self.module_names:
            sys.modules.pop(name, None)

    def unload(self):
        with _models_lock:
            if self in _models:
                _models.remove(self)
        self._forget_modules()
        for path in self.added_paths:
            still_used = any(path in (m.version_directory, m.directory) for m in _models)
            if not still_used and path in sys.path:
                sys.path.remove(path)
        self.module = None


def load_model(native):
    return LoadedModel(native)


# ---------------------------------------------------------------------------
# Instances
# ---------------------------------------------------------------------------

_STORAGE = dict(pb._NUMPY_OF_CODE)
_STORAGE[pb._BF16] = np.uint16
# The same as dtype objects (numpy's dtypes of its built-in types are
# singletons: an array of that type has `arr.dtype is _DTYPE[code]`).
_DTYPE = {code: np.dtype(t) for code, t in _STORAGE.items()}


class Instance:
    """One TritonPythonModel object and what executing it needs."""

    def __init__(self, loaded, index):
        self.loaded = loaded
        self.native = loaded.native
        self.index = index
        self.name = loaded.name
        self.version = loaded.version
        self.decoupled = loaded.decoupled
        self.max_batch_size = loaded.max_batch_size
        self._loop = None          # default mode: run_until_complete here
        self._bg_loop = None       # decoupled async: a loop on its own thread
        self._bg_thread = None
        self._warned = set()
        with _Speaking(loaded):
            try:
                self.model = loaded.cls()
                initialize = getattr(self.model, "initialize", None)
                if initialize is not None:
                    result = initialize(self._initialize_args())
                    if inspect.iscoroutine(result):
                        self._run_coroutine(result)
            except BaseException as e:  # noqa: BLE001
                _log_traceback(self.native, "initialize failed:", e)
                raise RunnerError(INTERNAL if not isinstance(e, pb.TritonModelException)
                                  else INVALID_ARGUMENT,
                                  "initialize failed: %s" % _error_text(e))
            execute = getattr(self.model, "execute", None)
            if execute is None:
                raise RunnerError(INVALID_ARGUMENT, "TritonPythonModel in %s has no execute() "
                                                    "method" % loaded.model_file)
            self.is_async = inspect.iscoroutinefunction(execute)
            loaded.report_packages()

    def _initialize_args(self):
        return {
            "model_config": self.loaded.config_json,
            "model_instance_kind": "CPU",
            "model_instance_name": "%s_%d" % (self.name, self.index),
            "model_instance_device_id": "0",
            "model_repository": self.loaded.directory,
            "model_version": str(self.version),
            "model_name": self.name,
        }

    def _warn_once(self, key, message):
        if key not in self._warned:
            self._warned.add(key)
            self.native.log(LOG_WARNING, message + " (logged once)")

    # -- asyncio -----------------------------------------------------------

    def _run_coroutine(self, coro):
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def _background_loop(self):
        if self._bg_loop is None:
            loop = asyncio.new_event_loop()
            loaded = self.loaded

            def run():
                _local.model = loaded  # this thread speaks for the model (logs, calls)
                loop.run_forever()

            self._bg_loop = loop
            self._bg_thread = threading.Thread(target=run, daemon=True,
                                               name="torii-python-%s-%d" % (self.name, self.index))
            self._bg_thread.start()
        return self._bg_loop

    # -- execute -----------------------------------------------------------

    def execute(self, batch):
        # What _Speaking does, without its object and calls (per request).
        previous = getattr(_local, "model", None)
        _local.model = self.loaded
        try:
            self._execute(batch)
        finally:
            _local.model = previous

    def _execute(self, batch):
        n = batch.request_count()
        rows = batch.rows()
        requests = self._requests(batch, n, rows)
        if requests is None:
            return
        try:
            if self.is_async:
                coro = self.model.execute(requests)
                if self.decoupled:
                    self._start_background(coro, requests)
                    return
                result = self._run_coroutine(coro)
            else:
                result = self.model.execute(requests)
        except BaseException as e:  # noqa: BLE001 (the host must get an answer)
            self._execute_failed(batch, requests, e)
            return
        if self.decoupled:
            if result is not None:
                self._warn_once("decoupled-return",
                                "a decoupled model's execute() must return None (its "
                                "responses go through the response senders); the returned "
                                "%s is ignored" % type(result).__name__)
            return
        self._deliver(batch, requests, result, rows)

    def _requests(self, batch, n, rows):
        """The InferenceRequests of a batch: each request's rows of every
        input, as numpy views of the host's memory (copies for a decoupled
        model, whose threads may outlive execute)."""
        if self.max_batch_size == 0 and n != 1:
            for r in range(n):
                batch.fail(r, INTERNAL, "the server batched %d requests for a model without "
                                        "batching (max_batch_size 0)" % n)
            return None
        make = pb.Tensor._make
        inputs = batch.inputs()
        if n == 1:
            per_request = [[make(name, self._input_array(buf, code, shape), code, shape)
                            for name, code, shape, buf in inputs]]
        else:
            per_request = [[] for _ in range(n)]
            for name, code, shape, buf in inputs:
                arr = self._input_array(buf, code, shape)
                start = 0
                for r in range(n):
                    part = arr[start:start + rows[r]]
                    start += rows[r]
                    per_request[r].append(make(name, part, code, part.shape))
        requests = []
        for r in range(n):
            if self.decoupled:
                params = json.dumps(batch.parameters(r))
                requested = [o for o in self.loaded.output_names if batch.output_requested(r, o)]
            else:
                params = _lazy_parameters(batch, r)
                requested = None
            req = pb.InferenceRequest._incoming(self, batch, r, per_request[r],
                                                batch.request_id(r), params, requested,
                                                self.decoupled)
            if self.decoupled:
                # Every request of a decoupled model is answered through its
                # sender, taken now, while the batch is alive.
                req.get_response_sender()
                req._batch = None
            requests.append(req)
        return requests

    def _input_array(self, buf, code, shape):
        if code == pb._BYTES:
            arr = pb._object_array(_host.decode_bytes(buf)).reshape(shape)
            return arr
        storage = _DTYPE.get(code)
        if storage is None:
            raise RunnerError(INTERNAL, "input datatype code %d is unknown to this runner" % code)
        if buf.nbytes == 0:
            return np.empty(shape, dtype=storage)
        arr = np.frombuffer(buf, dtype=storage)
        if len(shape) != 1:  # one dimension: frombuffer's shape already
            arr = arr.reshape(shape)
        if self.decoupled:
            arr = arr.copy()
        return arr

    # Called by InferenceRequest (pb) during execute.

    def _requested_outputs(self, batch, index):
        try:
            return [o for o in self.loaded.output_names if batch.output_requested(index, o)]
        except _host.HostError as e:
            raise pb.TritonModelException(e.args[1]) from None

    def _take_sender(self, request):
        if request._batch is None:
            raise pb.TritonModelException("the response sender must be taken during execute()")
        try:
            native = request._batch.sender(request._index)
        except _host.HostError as e:
            raise pb.TritonModelException(e.args[1]) from None
        return pb.InferenceResponseSender._make(native, request, self.decoupled,
                                                self.loaded.outputs_config)

    def _is_cancelled(self, request):
        try:
            return request._batch.is_cancelled()
        except _host.HostError:
            return False

    # -- answers -----------------------------------------------------------

    def _execute_failed(self, batch, requests, exc):
        _log_traceback(self.native, "execute() raised:", exc)
        message = _error_text(exc)
        if isinstance(exc, ValueError) and "read-only" in str(exc) and not self.decoupled:
            message += (" (request inputs are read-only views of the server's memory: copy one "
                        "with np.array(x) before changing it)")
        for r, req in enumerate(requests):
            sender = req._sender
            if sender is not None:
                if not sender._finished():
                    try:
                        sender._native.send(None, (INTERNAL, message), _host.RESPONSE_FINAL)
                    except _host.HostError:
                        pass
            else:
                batch.fail(r, INTERNAL, message)

    def _start_background(self, coro, requests):
        loop = self._background_loop()
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        loaded = self.loaded

        def done(f):
            exc = f.exception()
            if exc is None:
                return
            with _Speaking(loaded):
                _log_traceback(self.native, "async execute() raised:", exc)
            message = _error_text(exc)
            for req in requests:
                sender = req._sender
                if sender is not None and not sender._finished():
                    try:
                        sender._native.send(None, (INTERNAL, message), _host.RESPONSE_FINAL)
                    except _host.HostError:
                        pass

        future.add_done_callback(done)

    def _deliver(self, batch, requests, result, rows):
        n = len(requests)
        if result is None:
            for r, req in enumerate(requests):
                if req._sender is None:
                    batch.fail(r, INTERNAL,
                               "execute() returned None, but request %d was not answered through "
                               "its response sender; return a list with one InferenceResponse "
                               "per request" % r)
            return
        if not isinstance(result, (list, tuple)):
            message = ("execute() must return a list of pb_utils.InferenceResponse (one per "
                       "request), got %s" % type(result).__name__)
            self.native.log(LOG_ERROR, message)
            for r in range(n):
                batch.fail(r, INTERNAL, message)
            return
        if len(result) != n:
            message = ("execute() returned %d responses for %d requests; return exactly one "
                       "InferenceResponse per request, in the order of the requests (expected "
                       "%d, got %d)" % (len(result), n, n, len(result)))
            self.native.log(LOG_ERROR, message)
            for r in range(n):
                batch.fail(r, INTERNAL, message)
            return
        answers = {}  # request index -> {output name: Tensor}
        wanted = {}   # request index -> the output names it asked for
        for r, (req, resp) in enumerate(zip(requests, result)):
            if req._sender is not None:
                continue  # answered through its sender
            problem, outputs, names = self._check_response(batch, r, resp, rows[r])
            if problem is not None:
                code, message = problem
                batch.fail(r, code, message)
            else:
                answers[r] = outputs
                wanted[r] = names
        if answers:
            self._write_outputs(batch, requests, answers, wanted, rows)

    def _check_response(self, batch, r, resp, rows):
        """((code, message), None, None) when request r cannot get this
        response, else (None, {output name: Tensor}, [requested output names])
        with the outputs as they are sent."""
        def fail(code, message):
            return (code, message), None, None

        if resp is None:
            return fail(INTERNAL, "execute() returned None for request %d; return an "
                                  "InferenceResponse (with error=pb_utils.TritonError(...) to "
                                  "fail it)" % r)
        if not isinstance(resp, pb.InferenceResponse):
            return fail(INTERNAL, "execute() returned a %s for request %d; expected a "
                                  "pb_utils.InferenceResponse" % (type(resp).__name__, r))
        if resp.has_error():
            err = resp.error()
            return fail(pb._GRPC_OF_TRITON.get(err.code(), INTERNAL), err.message())
        by_name = {t.name(): t for t in resp.output_tensors()}
        loaded = self.loaded
        codes = loaded.output_codes
        requested = batch.output_requested
        names = []
        for name in loaded.output_names:
            if not requested(r, name):
                continue
            names.append(name)
            t = by_name.get(name)
            if t is None:
                return fail(INTERNAL, "the model's response has no output '%s', which the "
                                      "request asked for (it has %s)" %
                                      (name, sorted(by_name) if by_name else "none"))
            want = codes[name]
            if want is not None and want != t._code:  # else sent as it is
                t, problem = pb._conform_output(t, loaded.outputs_config, self._warn_once)
                if problem is not None:
                    return fail(INTERNAL, problem)
                by_name[name] = t
            if self.max_batch_size > 0:
                got = t._shape[0] if len(t._shape) else None
                if got != rows:
                    return fail(INTERNAL,
                                "output '%s' has shape %s, but the request has %d row(s): a "
                                "batching model (max_batch_size %d) returns each request's rows "
                                "in the first dimension" %
                                (name, list(t._shape), rows, self.max_batch_size))
        return None, by_name, names

    def _write_outputs(self, batch, requests, answers, wanted, rows):
        # Which outputs are needed, by which requests.
        if len(wanted) == 1:
            needed = next(iter(wanted.values()))
        else:
            needed = [name for name in self.loaded.output_names
                      if any(name in names for names in wanted.values())]
        if len(requests) == 1 or self.max_batch_size == 0:
            # One request (max_batch_size 0 has one per batch): its outputs
            # as they are.
            tensors = next(iter(answers.values()))
            for name in needed:
                t = tensors[name]
                self._allocate_and_copy(batch, name, t._code, list(t._shape), [(0, t)])
            return
        # Several requests of a batching model: their rows in one buffer per
        # output, when the shapes beyond the rows agree.
        for name in needed:
            inner = {tuple(t[name]._shape[1:]) for t in answers.values() if name in t}
            if len(inner) > 1:
                self._answer_separately(batch, requests, answers, name, inner)
                return
        offsets = []
        start = 0
        for rr in rows:
            offsets.append(start)
            start += rr
        total = start
        for name in needed:
            parts = [(r, t[name]) for r, t in answers.items() if name in t]
            code = parts[0][1]._code
            shape = [total] + list(parts[0][1]._shape[1:])
            self._allocate_and_copy(batch, name, code, shape,
                                    [(offsets[r], t) for r, t in parts], rows_total=total)

    def _allocate_and_copy(self, batch, name, code, shape, placed, rows_total=None):
        try:
            if code == pb._BYTES:
                self._write_bytes(batch, name, shape, placed, rows_total)
                return
            storage = _DTYPE[code]
            nbytes = math.prod(shape) * storage.itemsize
            if rows_total is None:
                src = placed[0][1]._array
                # The same dtype, C-contiguous: the host copies the bytes.
                if src.dtype is storage and batch.allocate_copy(name, code, shape, nbytes, src):
                    return
            buf = batch.allocate(name, code, shape, nbytes)
            if nbytes == 0:
                return
            dst = np.frombuffer(buf, dtype=storage).reshape(shape)
            if rows_total is None:
                dst[...] = placed[0][1]._array
            else:
                for offset, t in placed:
                    dst[offset:offset + t._shape[0]] = t._array
        except _host.HostError as e:
            self._fail_output(batch, name, e.args[0], e.args[1])

    def _write_bytes(self, batch, name, shape, placed, rows_total):
        if rows_total is None:
            encoded = pb.serialize_byte_tensor(placed[0][1]._array)
        else:
            # Rows of requests that did not produce this output are filled with
            # empty elements (they are never sent to anyone).
            per_row = math.prod(shape[1:])
            chunks = []
            at = 0
            for offset, t in sorted(placed, key=lambda p: p[0]):
                if offset > at:
                    chunks.append(b"\0\0\0\0" * ((offset - at) * per_row))
                chunks.append(pb.serialize_byte_tensor(t._array))
                at = offset + t._shape[0]
            if at < rows_total:
                chunks.append(b"\0\0\0\0" * ((rows_total - at) * per_row))
            encoded = b"".join(chunks)
        buf = batch.allocate(name, pb._BYTES, shape, len(encoded))
        if encoded:
            memoryview(buf).cast("B")[:] = encoded

    def _fail_output(self, batch, name, code, message):
        text = "output '%s': %s" % (name, message)
        self.native.log(LOG_ERROR, text)
        for r in range(batch.request_count()):
            if batch.output_requested(r, name):
                batch.fail(r, code or INTERNAL, text)

    def _answer_separately(self, batch, requests, answers, name, shapes):
        """Outputs whose shapes differ between the requests of a batch cannot
        share one buffer: each request gets its own response."""
        if not self.native.host_has("senders"):
            message = ("output '%s' has different shapes across the batched requests (%s); this "
                       "server (runner ABI %d.%d) needs them equal" %
                       ((name, sorted(list(s) for s in shapes)) + self.native.host_abi()))
            for r in answers:
                batch.fail(r, INTERNAL, message)
            return
        for r, tensors in answers.items():
            req = requests[r]
            sender = req.get_response_sender()
            try:
                sender.send(pb.InferenceResponse(output_tensors=list(tensors.values())),
                            flags=pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            except pb.TritonModelException as e:
                self.native.log(LOG_ERROR, "request %d: %s" % (r, e))

    # -- end ---------------------------------------------------------------

    def destroy(self):
        with _Speaking(self.loaded):
            finalize = getattr(self.model, "finalize", None)
            if finalize is not None:
                try:
                    result = finalize()
                    if inspect.iscoroutine(result):
                        self._run_coroutine(result)
                except BaseException as e:  # noqa: BLE001
                    _log_traceback(self.native, "finalize() raised:", e)
            for loop in (self._loop, self._bg_loop):
                if loop is None:
                    continue
                if loop is self._bg_loop:
                    loop.call_soon_threadsafe(loop.stop)
                    self._bg_thread.join(timeout=5)
                if not loop.is_running():
                    loop.close()
            self.model = None


def _lazy_parameters(batch, index):
    def read():
        try:
            return json.dumps(batch.parameters(index))
        except _host.HostError as e:
            raise pb.TritonModelException(e.args[1]) from None
    return read
