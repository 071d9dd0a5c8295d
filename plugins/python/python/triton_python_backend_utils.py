"""The Triton python-backend model API, as served by Torii's Python runner.

Models written for Triton's python backend import this module as

    import triton_python_backend_utils as pb_utils

and run unchanged on Torii. It is written for Torii from Triton's
documentation (names, arguments and behaviour), not copied from Triton.

Inside the Torii server this module talks to the server through the
runner's native module `_torii_host`. Outside the server (plain Python, e.g.
a unit test of a model.py) it still works: build `Tensor` and
`InferenceRequest` objects, call your model's `execute()` and read the
`InferenceResponse`s. What needs a server (calls to other models, response
senders) raises `TritonModelException` there.
"""

import asyncio
import json
import math
import struct
import sys
import threading

import numpy as np

try:  # Present only inside the Torii runner.
    import _torii_host as _host
except ImportError:  # plain Python: no server
    _host = None

__all__ = [
    "Tensor", "InferenceRequest", "InferenceResponse", "InferenceResponseSender",
    "ResponseIterator", "TritonError", "TritonModelException", "Logger", "ModelConfig",
    "PreferredMemory", "MetricFamily", "Metric",
    "get_input_tensor_by_name", "get_output_tensor_by_name", "get_input_config_by_name",
    "get_output_config_by_name", "triton_string_to_numpy", "triton_to_numpy_type",
    "numpy_to_triton_type", "serialize_byte_tensor", "deserialize_bytes_tensor",
    "using_decoupled_model_transaction_policy", "get_model_dir", "load_model",
    "unload_model", "is_model_ready",
    "TRITONSERVER_RESPONSE_COMPLETE_FINAL", "TRITONSERVER_REQUEST_FLAG_SEQUENCE_START",
    "TRITONSERVER_REQUEST_FLAG_SEQUENCE_END", "TRITONSERVER_REQUEST_RELEASE_ALL",
    "TRITONSERVER_REQUEST_RELEASE_RESCHEDULE", "TRITONSERVER_MEMORY_CPU",
    "TRITONSERVER_MEMORY_GPU",
]

# ---------------------------------------------------------------------------
# Constants (Triton's values)
# ---------------------------------------------------------------------------

TRITONSERVER_REQUEST_FLAG_SEQUENCE_START = 1
TRITONSERVER_REQUEST_FLAG_SEQUENCE_END = 2
TRITONSERVER_RESPONSE_COMPLETE_FINAL = 1
TRITONSERVER_REQUEST_RELEASE_ALL = 1
TRITONSERVER_REQUEST_RELEASE_RESCHEDULE = 2
TRITONSERVER_MEMORY_GPU = 1
TRITONSERVER_MEMORY_CPU = 2

# Datatype codes: Triton's TRITONSERVER_DataType numbering, which is also
# Torii's ToriiDataType.
_INVALID, _BOOL, _UINT8, _UINT16, _UINT32, _UINT64 = 0, 1, 2, 3, 4, 5
_INT8, _INT16, _INT32, _INT64 = 6, 7, 8, 9
_FP16, _FP32, _FP64, _BYTES, _BF16 = 10, 11, 12, 13, 14

_DATATYPE_NAMES = ["INVALID", "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                   "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES", "BF16"]

_NUMPY_OF_CODE = {
    _BOOL: np.bool_, _UINT8: np.uint8, _UINT16: np.uint16, _UINT32: np.uint32,
    _UINT64: np.uint64, _INT8: np.int8, _INT16: np.int16, _INT32: np.int32, _INT64: np.int64,
    _FP16: np.float16, _FP32: np.float32, _FP64: np.float64, _BYTES: np.object_,
}

_CODE_OF_NUMPY = {np.dtype(t): c for c, t in _NUMPY_OF_CODE.items() if c != _BYTES}

TRITON_STRING_TO_NUMPY = {
    "TYPE_BOOL": bool,
    "TYPE_UINT8": np.uint8,
    "TYPE_UINT16": np.uint16,
    "TYPE_UINT32": np.uint32,
    "TYPE_UINT64": np.uint64,
    "TYPE_INT8": np.int8,
    "TYPE_INT16": np.int16,
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
    "TYPE_FP16": np.float16,
    "TYPE_FP32": np.float32,
    "TYPE_FP64": np.float64,
    "TYPE_STRING": np.object_,
}

# Config type names ("TYPE_FP32") to datatype codes.
_CODE_OF_CONFIG_TYPE = {
    "TYPE_BOOL": _BOOL, "TYPE_UINT8": _UINT8, "TYPE_UINT16": _UINT16, "TYPE_UINT32": _UINT32,
    "TYPE_UINT64": _UINT64, "TYPE_INT8": _INT8, "TYPE_INT16": _INT16, "TYPE_INT32": _INT32,
    "TYPE_INT64": _INT64, "TYPE_FP16": _FP16, "TYPE_FP32": _FP32, "TYPE_FP64": _FP64,
    "TYPE_STRING": _BYTES, "TYPE_BF16": _BF16,
}

# DLPack type codes (kDLInt, kDLUInt, kDLFloat, kDLBfloat) for each datatype.
_DL_INT, _DL_UINT, _DL_FLOAT, _DL_BFLOAT = 0, 1, 2, 4
_DLPACK_OF_CODE = {
    _BOOL: (_DL_UINT, 8), _UINT8: (_DL_UINT, 8), _UINT16: (_DL_UINT, 16),
    _UINT32: (_DL_UINT, 32), _UINT64: (_DL_UINT, 64), _INT8: (_DL_INT, 8),
    _INT16: (_DL_INT, 16), _INT32: (_DL_INT, 32), _INT64: (_DL_INT, 64),
    _FP16: (_DL_FLOAT, 16), _FP32: (_DL_FLOAT, 32), _FP64: (_DL_FLOAT, 64),
    _BF16: (_DL_BFLOAT, 16),
}
_CODE_OF_DLPACK = {v: k for k, v in _DLPACK_OF_CODE.items() if k != _BOOL}
_DL_BOOL = 6  # kDLBool (DLPack 0.8+; torch.bool may arrive as it)


def triton_to_numpy_type(data_type):
    """The numpy type of a datatype code (1 = BOOL ... 13 = BYTES); None for
    BF16 (numpy has no bfloat16) and unknown codes."""
    return _NUMPY_OF_CODE.get(data_type)


def numpy_to_triton_type(data_type):
    """The datatype code of a numpy type or dtype; None when it has none."""
    try:
        dt = np.dtype(data_type)
    except TypeError:
        return None
    if dt == np.object_ or dt.kind == "S":
        return _BYTES
    return _CODE_OF_NUMPY.get(dt)


def triton_string_to_numpy(triton_type_string):
    """The numpy type of a config type name ("TYPE_FP32" -> np.float32)."""
    return TRITON_STRING_TO_NUMPY[triton_type_string]


# ---------------------------------------------------------------------------
# BYTES tensors
# ---------------------------------------------------------------------------

def serialize_byte_tensor(input_tensor):
    """Encodes a tensor of bytes/str objects as BYTES: for each element in C
    order, a 4-byte little-endian length then the bytes (str as UTF-8).
    Returns the encoding as bytes (b"" for an empty tensor), or None when the
    tensor is not an object or bytes array."""
    if input_tensor.size == 0:
        return b""
    if input_tensor.dtype != np.object_ and input_tensor.dtype.type != np.bytes_:
        return None
    parts = []
    for item in input_tensor.flat:
        if isinstance(item, bytes):
            b = item
        elif isinstance(item, (bytearray, memoryview, np.bytes_)):
            b = bytes(item)
        else:
            b = str(item).encode("utf-8")
        parts.append(struct.pack("<I", len(b)))
        parts.append(b)
    return b"".join(parts)


def deserialize_bytes_tensor(encoded_tensor):
    """Decodes a BYTES encoding into a 1-D numpy object array of bytes."""
    if _host is not None:
        return _object_array(_host.decode_bytes(encoded_tensor))
    out = []
    view = memoryview(encoded_tensor).cast("B")
    offset = 0
    while offset < len(view):
        if len(view) - offset < 4:
            raise ValueError("BYTES tensor: truncated length prefix at byte %d" % offset)
        (n,) = struct.unpack_from("<I", view, offset)
        offset += 4
        if n > len(view) - offset:
            raise ValueError("BYTES tensor: element of %d bytes runs past the buffer" % n)
        out.append(bytes(view[offset:offset + n]))
        offset += n
    return _object_array(out)


def _object_array(items):
    arr = np.empty(len(items), dtype=np.object_)
    arr[:] = items
    return arr


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

class TritonModelException(Exception):
    """Raise it from initialize, execute or finalize to fail with a message."""


class TritonError:
    """An error for one response: InferenceResponse(error=TritonError(...)).
    `code` is one of the class constants (default INTERNAL)."""

    UNKNOWN = 0
    INTERNAL = 1
    NOT_FOUND = 2
    INVALID_ARG = 3
    UNAVAILABLE = 4
    UNSUPPORTED = 5
    ALREADY_EXISTS = 6
    CANCELLED = 7

    def __init__(self, message, code=INTERNAL):
        if message is None:
            raise TypeError("TritonError needs a message")
        self._message = str(message)
        self._code = int(code)

    def code(self):
        return self._code

    def message(self):
        return self._message

    def __str__(self):
        return self._message

    def __repr__(self):
        return "TritonError(%r, code=%d)" % (self._message, self._code)


# TritonError codes <-> gRPC status codes (what Torii's host speaks).
_GRPC_OF_TRITON = {0: 2, 1: 13, 2: 5, 3: 3, 4: 14, 5: 12, 6: 6, 7: 1}
_TRITON_OF_GRPC = {1: 7, 2: 0, 3: 3, 4: 4, 5: 2, 6: 6, 12: 5, 13: 1, 14: 4}


# ---------------------------------------------------------------------------
# Tensor
# ---------------------------------------------------------------------------

class Tensor:
    """A named tensor. Tensor(name, ndarray) for outputs and for the inputs
    of calls to other models; the inputs of a request arrive as Tensors."""

    __slots__ = ("_name", "_array", "_code", "_shape", "_from_host")

    def __init__(self, name, data, *_ignored):
        if not isinstance(name, str):
            raise TritonModelException("Tensor name must be a str, got %s" % type(name).__name__)
        if isinstance(data, Tensor):
            data = data.as_numpy()
        arr = data if isinstance(data, np.ndarray) else np.asarray(data)
        code = _CODE_OF_NUMPY.get(arr.dtype)  # numbers and bool, the common case
        if code is None:
            if arr.dtype.kind == "U":  # str elements: BYTES, encoded as UTF-8 when sent
                arr = arr.astype(np.object_)
            code = numpy_to_triton_type(arr.dtype)
        if code is None:
            raise TritonModelException(
                "Tensor '%s': numpy dtype %s has no Triton datatype (use bool, int8..int64, "
                "uint8..uint64, float16/32/64, or an object array of bytes)" % (name, arr.dtype))
        self._name = name
        self._array = arr
        self._code = code
        self._shape = arr.shape
        self._from_host = False

    @classmethod
    def _make(cls, name, array, code, shape, from_host=True):
        t = cls.__new__(cls)
        t._name = name
        t._array = array
        t._code = code
        t._shape = tuple(shape)
        t._from_host = from_host
        return t

    def name(self):
        return self._name

    def as_numpy(self):
        """The data as a numpy array: read-only and without a copy for a
        request's input (valid during execute(); copy it to keep it), an
        object array of bytes for BYTES."""
        if self._code == _BF16:
            raise TritonModelException(
                "Tensor '%s' is BF16, which numpy cannot represent; use to_dlpack() (e.g. "
                "torch.from_dlpack(tensor)) instead" % self._name)
        return self._array

    def triton_dtype(self):
        """The datatype code (TYPE_FP32 -> 11, as Triton's TRITONSERVER_DataType)."""
        return self._code

    def shape(self):
        return list(self._shape)

    def is_cpu(self):
        return True

    def to_dlpack(self):
        """A DLPack capsule of the tensor, without a copy (not for BYTES)."""
        return self.__dlpack__()

    def __dlpack__(self, stream=None):
        if self._code == _BYTES:
            raise TritonModelException("Tensor '%s' is BYTES, which DLPack cannot carry" % self._name)
        dl_code, bits = _DLPACK_OF_CODE[self._code]
        arr = np.ascontiguousarray(self._array)
        if _host is not None:
            return _host.to_dlpack(arr, dl_code, bits, list(self._shape))
        if self._code == _BF16 or not arr.flags.writeable:
            raise TritonModelException("Tensor.to_dlpack() of this tensor needs the Torii runner")
        return arr.__dlpack__()

    def __dlpack_device__(self):
        return (1, 0)  # kDLCPU, device 0

    @staticmethod
    def from_dlpack(name, dlpack_object):
        """A Tensor from a DLPack capsule or an object with __dlpack__ (a torch
        tensor, a numpy array), without a copy. CPU and C-contiguous only."""
        if _host is None:
            return Tensor(name, np.from_dlpack(dlpack_object))
        buf, dl_code, bits, lanes, shape = _host.from_dlpack(dlpack_object)
        if lanes != 1:
            raise TritonModelException("from_dlpack: vector types (lanes=%d) are not supported" % lanes)
        if dl_code == _DL_BOOL or (dl_code == _DL_UINT and bits == 8 and
                                   _is_torch_bool(dlpack_object)):
            code = _BOOL
        else:
            code = _CODE_OF_DLPACK.get((dl_code, bits))
        if code is None:
            raise TritonModelException(
                "from_dlpack: DLPack type (code %d, %d bits) has no Triton datatype" % (dl_code, bits))
        storage = np.uint16 if code == _BF16 else _NUMPY_OF_CODE[code]
        count = math.prod(shape)
        arr = np.frombuffer(buf, dtype=storage, count=count).reshape(shape) if count else \
            np.empty(shape, dtype=storage)
        return Tensor._make(name, arr, code, shape, from_host=False)

    def __repr__(self):
        return "Tensor(%r, %s, shape=%s)" % (self._name, _DATATYPE_NAMES[self._code],
                                            list(self._shape))


def _is_torch_bool(obj):
    dtype = getattr(obj, "dtype", None)
    return dtype is not None and str(dtype) == "torch.bool"


# ---------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------

def _parameters_json(parameters, what):
    if parameters is None:
        return "{}"
    if isinstance(parameters, str):
        return parameters
    if not isinstance(parameters, dict):
        raise TritonModelException("%s parameters must be a dict, got %s" %
                                   (what, type(parameters).__name__))
    for k, v in parameters.items():
        if not isinstance(k, str):
            raise TritonModelException("%s parameter keys must be str, got %s" %
                                       (what, type(k).__name__))
        if not isinstance(v, (bool, int, str, float)):
            raise TritonModelException("%s parameter '%s' must be bool, int, float or str, got %s"
                                       % (what, k, type(v).__name__))
    return json.dumps(parameters)


class InferenceResponse:
    """One response: output tensors, or an error. `parameters` (a dict of
    bool/int/str) are accepted; Torii does not send response parameters to
    clients yet."""

    def __init__(self, output_tensors=None, error=None, parameters=None):
        if output_tensors is None:
            output_tensors = []
        if error is not None and not isinstance(error, TritonError):
            if isinstance(error, BaseException):
                error = TritonError("%s: %s" % (type(error).__name__, error))
            else:
                error = TritonError(str(error))
        tensors = list(output_tensors)
        for t in tensors:
            if not isinstance(t, Tensor):
                raise TritonModelException(
                    "InferenceResponse output_tensors must be pb_utils.Tensor objects, got %s"
                    % type(t).__name__)
        self._tensors = tensors
        self._error = error
        self._parameters = "{}" if parameters is None else _parameters_json(parameters,
                                                                            "response")

    def output_tensors(self):
        return self._tensors

    def has_error(self):
        return self._error is not None

    def error(self):
        return self._error

    def parameters(self):
        return self._parameters

    def __repr__(self):
        if self._error is not None:
            return "InferenceResponse(error=%r)" % (self._error,)
        return "InferenceResponse(%s)" % ", ".join(t.name() for t in self._tensors)


class InferenceResponseSender:
    """Answers one request of a decoupled model (or, in default mode, the one
    response of a request): send(response, flags); the last send carries
    flags=TRITONSERVER_RESPONSE_COMPLETE_FINAL. Usable from any thread, also
    after execute() returned."""

    def __init__(self, *_args, **_kwargs):
        raise TritonModelException("get a response sender from request.get_response_sender()")

    @classmethod
    def _make(cls, native, request, decoupled, outputs_config):
        s = cls.__new__(cls)
        s._native = native
        s._request = request
        s._decoupled = decoupled
        s._outputs_config = outputs_config
        s._pending = None  # default mode: a response waiting for its final flag
        s._lock = threading.Lock()
        return s

    def send(self, response=None, flags=0):
        if response is not None and not isinstance(response, InferenceResponse):
            raise TritonModelException("send() takes a pb_utils.InferenceResponse, got %s" %
                                       type(response).__name__)
        final = bool(flags & TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        with self._lock:
            if not self._decoupled:
                # One response per request: hold a response until its final flag.
                if response is not None and self._pending is not None:
                    raise TritonModelException(
                        "this model is not decoupled, so it sends exactly one response per "
                        "request (set model_transaction_policy { decoupled: true } to send more)")
                if not final:
                    if response is None:
                        raise TritonModelException("send() needs a response or the FINAL flag")
                    self._pending = response
                    return
                if response is None:
                    response, self._pending = self._pending, None
        _send_native(self._native, response, flags, self._request, self._outputs_config)

    def is_cancelled(self):
        return self._native.is_cancelled()

    def _finished(self):
        return self._native.finished


def _send_native(native, response, flags, request, outputs_config):
    host_flags = _host.RESPONSE_FINAL if flags & TRITONSERVER_RESPONSE_COMPLETE_FINAL else 0
    try:
        if response is None:
            native.send(None, None, host_flags)
        elif response.has_error():
            err = response.error()
            native.send(None, (_GRPC_OF_TRITON.get(err.code(), 13), err.message()), host_flags)
        else:
            outputs, problem = _encode_for_sender(response, request, outputs_config)
            if problem is not None:
                native.send(None, (13, problem), _host.RESPONSE_FINAL)
                raise TritonModelException(problem + " (the request was ended with this error)")
            native.send(outputs, None, host_flags)
    except _host.HostError as e:
        raise TritonModelException(e.args[1]) from None


def _encode_for_sender(response, request, outputs_config):
    """[(name, code, shape, contiguous buffer)] of the outputs the request
    asked for, or (None, problem)."""
    wanted = request._requested_set() if request is not None else None
    outputs = []
    for t in response.output_tensors():
        if wanted is not None and t.name() not in wanted:
            continue
        t, problem = _conform_output(t, outputs_config, _sender_warn)
        if problem is not None:
            return None, problem
        outputs.append((t.name(), t._code, list(t._shape), _payload(t)))
    return outputs, None


_sender_warned = set()


def _sender_warn(key, message):
    if key not in _sender_warned:
        _sender_warned.add(key)
        Logger.log_warn(message + " (logged once)")


def _payload(tensor):
    """The bytes of a tensor as the host wants them: BYTES encoded,
    everything else C-contiguous."""
    if tensor._code == _BYTES:
        return serialize_byte_tensor(tensor._array)
    return np.ascontiguousarray(tensor._array)


def _conform_output(tensor, outputs_config, warn=None):
    """(tensor, None) when the output may be sent as the config declares it,
    else (None, message).

    Triton's python backend sends an output in whatever dtype the model
    produced, and Triton's own examples rely on it (np.array([0]) is int64
    for a TYPE_INT32 output). Torii's server checks outputs against the
    config, so an output of another numeric dtype is converted to the
    declared one when no value changes kind or overflows (int64 -> int32 in
    range, float64 -> float32, int -> float, bool -> int), with a warning
    once; anything else (float -> int, numbers <-> BYTES, values out of
    range) is an error that says how to fix it."""
    if outputs_config is None:
        return tensor, None
    declared = outputs_config.get(tensor.name())
    if declared is None:
        return tensor, None
    want = _CODE_OF_CONFIG_TYPE.get(declared.get("data_type"))
    if want is None or want == tensor._code:
        return tensor, None
    config_type = declared.get("data_type")
    target = _NUMPY_OF_CODE.get(want)
    src = tensor._array
    fix = ("; convert it with .astype(np.%s)" % np.dtype(target).name
           if target is not None and target is not np.object_ else "")
    problem = ("output '%s': the config declares %s, the model returned %s data (%s)%s" %
               (tensor.name(), config_type, _DATATYPE_NAMES[tensor._code],
                src.dtype if tensor._code != _BF16 else "bfloat16", fix))
    if (target is None or target is np.object_ or tensor._code in (_BYTES, _BF16) or
            not np.can_cast(src.dtype, target, casting="same_kind")):
        return None, problem
    with np.errstate(all="ignore"):
        converted = src.astype(target)
        if np.dtype(target).kind in "iub":
            if not np.array_equal(converted.astype(src.dtype), src):
                return None, problem.replace(" data (", " data whose values do not fit (", 1)
        elif not np.array_equal(np.isfinite(converted), np.isfinite(src)):
            return None, problem.replace(" data (", " data whose values do not fit (", 1)
    if warn is not None:
        warn("convert:" + tensor.name(),
             "output '%s': the config declares %s, the model returned %s; converted it (return "
             "the declared dtype to avoid the conversion)" % (tensor.name(), config_type,
                                                              src.dtype))
    return Tensor._make(tensor.name(), converted, want, tensor._shape, from_host=False), None


# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------

class PreferredMemory:
    """Accepted for compatibility; Torii's Python runner works on the CPU."""

    def __init__(self, preferred_memory_type, preferred_device_id=0):
        self.preferred_memory_type = preferred_memory_type
        self.preferred_device_id = preferred_device_id


class InferenceRequest:
    """A request. The model's execute() receives these; build one yourself
    to call another model of the server (exec / async_exec), or to test a
    model in plain Python."""

    def __init__(self, request_id="", correlation_id=0, inputs=None, requested_output_names=None,
                 model_name=None, model_version=-1, flags=0, timeout=0, preferred_memory=None,
                 trace=None, parameters=None):
        if inputs is None:
            raise TypeError("InferenceRequest needs inputs (a list of pb_utils.Tensor)")
        if requested_output_names is None:
            raise TypeError("InferenceRequest needs requested_output_names")
        if model_name is None:
            raise TypeError("InferenceRequest needs model_name")
        if not isinstance(correlation_id, (int, str)):
            raise TritonModelException("correlation_id must be an int or a str")
        for t in inputs:
            if not isinstance(t, Tensor):
                raise TritonModelException("InferenceRequest inputs must be pb_utils.Tensor "
                                           "objects, got %s" % type(t).__name__)
        self._inputs = list(inputs)
        self._requested = [str(n) for n in requested_output_names]
        self._model_name = model_name if isinstance(model_name, str) else _as_str(model_name)
        self._model_version = int(model_version)
        self._request_id = str(request_id)
        self._correlation_id = correlation_id
        self._flags = int(flags)
        self._timeout = int(timeout)
        self._parameters = _parameters_json(parameters, "request")
        self._batch = None
        self._index = -1
        self._decoupled = False
        self._sender = None
        self._release_flags = TRITONSERVER_REQUEST_RELEASE_ALL
        self._runner = None

    @classmethod
    def _incoming(cls, runner, batch, index, inputs, request_id, parameters_json, requested,
                  decoupled):
        r = cls.__new__(cls)
        r._inputs = inputs
        r._requested = requested  # None: read from the batch when asked
        r._model_name = runner.name
        r._model_version = runner.version
        r._request_id = request_id
        r._correlation_id = 0
        r._flags = 0
        r._timeout = 0
        r._parameters = parameters_json
        r._batch = batch
        r._index = index
        r._decoupled = decoupled
        r._sender = None
        r._release_flags = TRITONSERVER_REQUEST_RELEASE_ALL
        r._runner = runner
        return r

    def inputs(self):
        return self._inputs

    def request_id(self):
        return self._request_id

    def correlation_id(self):
        return self._correlation_id

    def flags(self):
        return self._flags

    def set_flags(self, flags):
        self._flags = int(flags)

    def timeout(self):
        return self._timeout

    def parameters(self):
        """The request's parameters as a JSON string ({"key": value, ...})."""
        if callable(self._parameters):
            self._parameters = self._parameters()
        return self._parameters

    def trace(self):
        return None

    def model_name(self):
        return self._model_name

    def requested_output_names(self):
        """The outputs the client asked for (all declared outputs when it named
        none)."""
        if self._requested is None:
            self._requested = self._runner._requested_outputs(self._batch, self._index)
        return list(self._requested)

    def _requested_set(self):
        return set(self.requested_output_names())

    def get_response_sender(self):
        """The sender that answers this request (decoupled models; default-mode
        models may use it for their one response)."""
        if self._sender is None:
            if self._runner is None:
                raise TritonModelException(
                    "get_response_sender() needs the Torii server (this request was built in "
                    "Python)")
            self.requested_output_names()  # the sender filters outputs by it
            self._sender = self._runner._take_sender(self)
        return self._sender

    def is_cancelled(self):
        if self._sender is not None:
            return self._sender.is_cancelled()
        if self._runner is None or self._batch is None:
            return False
        return self._runner._is_cancelled(self)

    def set_release_flags(self, flags):
        if flags & TRITONSERVER_REQUEST_RELEASE_RESCHEDULE:
            raise TritonModelException(
                "request rescheduling (TRITONSERVER_REQUEST_RELEASE_RESCHEDULE) is not "
                "supported by Torii")
        self._release_flags = flags

    # -- calls to other models ------------------------------------------

    def exec(self, decoupled=False):
        """Runs this request on model `model_name` of the server and waits:
        returns an InferenceResponse (check has_error()), or with
        decoupled=True an iterator over the responses."""
        call, error = _start_call(self)
        if error is not None:
            return _error_response_or_iterator(error, decoupled)
        if decoupled:
            return ResponseIterator._make(call)
        return _single_response(call)

    def async_exec(self, decoupled=False):
        """Like exec(), as an awaitable, for `async def execute`."""
        loop = asyncio.get_running_loop()
        call, error = _start_call(self)
        if error is not None:
            future = loop.create_future()
            future.set_result(_error_response_or_iterator(error, decoupled))
            return future
        if decoupled:
            it = ResponseIterator._make(call)
            return loop.run_in_executor(None, it._prefetch)
        return loop.run_in_executor(None, _single_response, call)

    def __repr__(self):
        return "InferenceRequest(model=%r, id=%r, inputs=%s)" % (
            self._model_name, self._request_id, [t.name() for t in self._inputs])


def _as_str(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray) and v.size == 1:
        return _as_str(v.reshape(-1)[0])
    return str(v)


def _current_native():
    from torii_python_driver import current_native_model  # inside the runner only
    return current_native_model()


def _start_call(request):
    """(native Call, None) or (None, TritonError)."""
    if _host is None:
        raise TritonModelException(
            "InferenceRequest.exec() calls another model of the Torii server; there is no "
            "server in plain Python (mock exec() in tests)")
    native_model = _current_native()
    if native_model is None:
        raise TritonModelException("no model of this process can make calls")
    inputs = []
    for t in request._inputs:
        inputs.append((t.name(), t._code, list(t._shape), _payload(t)))
    try:
        params = json.loads(request._parameters) if request._parameters else {}
        call = native_model.infer(
            model_name=request._model_name, model_version=request._model_version,
            inputs=inputs, outputs=request._requested, request_id=request._request_id,
            parameters=params, timeout_us=max(0, request._timeout))
    except _host.HostError as e:
        return None, TritonError(e.args[1], _TRITON_OF_GRPC.get(e.args[0], TritonError.INTERNAL))
    return call, None


def _response_from_result(result):
    code, message, outputs = result
    if code != 0:
        return InferenceResponse(error=TritonError(message, _TRITON_OF_GRPC.get(code, 1)))
    tensors = []
    for name, dtype, shape, buf in outputs:
        tensors.append(Tensor._make(name, _array_from_buffer(buf, dtype, shape), dtype, shape,
                                    from_host=False))
    return InferenceResponse(output_tensors=tensors)


def _array_from_buffer(buf, code, shape):
    """A numpy array over a host buffer (read-only; BYTES decoded)."""
    if code == _BYTES:
        items = _host.decode_bytes(buf)
        return _object_array(items).reshape(shape)
    storage = np.uint16 if code == _BF16 else _NUMPY_OF_CODE.get(code)
    if storage is None:
        raise TritonModelException("unknown datatype code %d" % code)
    if buf.nbytes == 0:
        return np.empty(shape, dtype=storage)
    return np.frombuffer(buf, dtype=storage).reshape(shape)


def _single_response(call):
    first = call.next()
    if first is None:
        return InferenceResponse(error=TritonError("the model sent no response"))
    # Drain the rest (a non-decoupled model sends exactly one).
    while call.next() is not None:
        pass
    return _response_from_result(first)


def _error_response_or_iterator(error, decoupled):
    response = InferenceResponse(error=error)
    if decoupled:
        return iter([response])
    return response


class ResponseIterator:
    """The responses of a call to a decoupled model, in order. A model that
    ends without a last response yields an empty response (no outputs) at the
    end, as in Triton."""

    def __init__(self, *_args, **_kwargs):
        raise TritonModelException("ResponseIterator comes from exec(decoupled=True)")

    @classmethod
    def _make(cls, call):
        it = cls.__new__(cls)
        it._call = call
        it._done = False
        it._buffered = []
        return it

    def __iter__(self):
        return self

    def __next__(self):
        if self._buffered:
            return self._buffered.pop(0)
        if self._done:
            raise StopIteration
        result = self._call.next()
        if result is None:
            self._done = True
            raise StopIteration
        return _response_from_result(result)

    def _prefetch(self):
        # For async_exec(decoupled=True): wait for the first response off the
        # event loop, then hand the iterator over.
        try:
            self._buffered.append(self.__next__())
        except StopIteration:
            pass
        return self

    def cancel(self):
        """Stops receiving responses (the called model is not told: Torii has
        no cancellation of calls yet)."""
        self._done = True
        self._call.cancel()


# ---------------------------------------------------------------------------
# Config helpers
# ---------------------------------------------------------------------------

def get_input_tensor_by_name(inference_request, name):
    """The input Tensor called `name`, or None."""
    for t in inference_request.inputs():
        if t.name() == name:
            return t
    return None


def get_output_tensor_by_name(inference_response, name):
    """The output Tensor called `name`, or None."""
    for t in inference_response.output_tensors():
        if t.name() == name:
            return t
    return None


def get_input_config_by_name(model_config, name):
    """The config dict of input `name`, or None."""
    for entry in model_config.get("input", []):
        if entry.get("name") == name:
            return entry
    return None


def get_output_config_by_name(model_config, name):
    """The config dict of output `name`, or None."""
    for entry in model_config.get("output", []):
        if entry.get("name") == name:
            return entry
    return None


def using_decoupled_model_transaction_policy(model_config):
    """Whether the config sets model_transaction_policy { decoupled: true }."""
    return bool(model_config.get("model_transaction_policy", {}).get("decoupled", False))


class ModelConfig:
    """The config auto_complete_config() receives and returns. Read it with
    as_dict(); change it with the set_/add_ methods, which refuse changes
    that contradict what the config already says."""

    def __init__(self, model_config):
        if isinstance(model_config, (str, bytes)):
            model_config = json.loads(model_config)
        self._model_config = model_config
        self._model_config.setdefault("input", [])
        self._model_config.setdefault("output", [])
        self._model_config.setdefault("max_batch_size", 0)
        self._model_config.setdefault("name", "")

    def as_dict(self):
        return self._model_config

    def _name(self):
        return self._model_config.get("name", "")

    def set_max_batch_size(self, max_batch_size):
        current = self._model_config.get("max_batch_size", 0)
        if current > max_batch_size:
            raise ValueError(
                "configuration specified max_batch_size %d, but in auto-complete-config "
                "function for model '%s' specified max_batch_size %d"
                % (current, self._name(), max_batch_size))
        self._model_config["max_batch_size"] = int(max_batch_size)

    def set_dynamic_batching(self):
        for other in ("sequence_batching", "ensemble_scheduling"):
            if other in self._model_config:
                raise ValueError(
                    "Configuration specified scheduling_choice as '%s', but auto-complete-config "
                    "function for model '%s' tries to set scheduling_choice as 'dynamic_batching'"
                    % (other, self._name()))
        self._model_config.setdefault("dynamic_batching", {})

    def _add_tensor(self, kind, tensor, valid):
        name = tensor.get("name")
        for key in tensor:
            if key not in valid:
                raise ValueError(
                    "%s '%s' in auto-complete-config function for model '%s' contains property "
                    "other than %s." % (kind, name, self._name(),
                                        ", ".join("'%s'" % v for v in valid)))
        for key in ("name", "data_type", "dims"):
            if key not in tensor:
                raise ValueError("%s%s in auto-complete-config function for model '%s' is missing "
                                 "'%s' property." % (kind, " '%s'" % name if name else "",
                                                     self._name(), key))
        dims = [int(d) for d in tensor["dims"]]
        for existing in self._model_config[kind]:
            if existing.get("name") != name:
                continue
            have_type = existing.get("data_type", "TYPE_INVALID")
            if have_type not in ("TYPE_INVALID", "") and have_type != tensor["data_type"]:
                raise ValueError(
                    "unable to load model '%s', configuration expects datatype %s for %s '%s', "
                    "model provides %s" % (self._name(), have_type, kind, name,
                                           tensor["data_type"]))
            have_dims = [int(d) for d in existing.get("dims", [])]
            if have_dims and have_dims != dims:
                raise ValueError(
                    "model '%s', tensor '%s': the model expects dims %s but the model "
                    "configuration specifies dims %s" % (self._name(), name, dims, have_dims))
            if ("optional" in existing and "optional" in tensor and
                    bool(existing["optional"]) != bool(tensor["optional"])):
                raise ValueError(
                    "model '%s', tensor '%s': the model expects optional %s but the model "
                    "configuration specifies optional %s" % (self._name(), name,
                                                             tensor["optional"],
                                                             existing["optional"]))
            existing["data_type"] = tensor["data_type"]
            existing["dims"] = dims
            if "optional" in tensor:
                existing["optional"] = bool(tensor["optional"])
            return
        entry = dict(tensor)
        entry["dims"] = dims
        self._model_config[kind].append(entry)

    def add_input(self, input):  # noqa: A002 (Triton's argument name)
        self._add_tensor("input", input, ["name", "data_type", "dims", "optional"])

    def add_output(self, output):
        self._add_tensor("output", output, ["name", "data_type", "dims"])

    def set_model_transaction_policy(self, transaction_policy_dict):
        for key in transaction_policy_dict:
            if key != "decoupled":
                raise ValueError("model transaction property in auto-complete-config function "
                                 "for model '%s' contains property other than 'decoupled'."
                                 % self._name())
        policy = self._model_config.setdefault("model_transaction_policy", {})
        if "decoupled" in transaction_policy_dict:
            want = bool(transaction_policy_dict["decoupled"])
            if "decoupled" in policy and bool(policy["decoupled"]) != want:
                raise ValueError("trying to change decoupled property in auto-complete-config for "
                                 "model '%s', which is already set to '%s'."
                                 % (self._name(), policy["decoupled"]))
            policy["decoupled"] = want


# ---------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------

class Logger:
    """Writes to the server log, tagged with the model. Outside the server,
    to stderr."""

    INFO = 2
    WARNING = 1
    ERROR = 0
    VERBOSE = 3
    _NAMES = {0: "ERROR", 1: "WARNING", 2: "INFO", 3: "VERBOSE"}

    @staticmethod
    def log(message, level=2):
        level = int(level)
        native = None
        if _host is not None:
            try:
                native = _current_native()
            except ImportError:
                native = None
        if native is not None:
            native.log(level, str(message))
        else:
            sys.__stderr__.write("[%s] %s\n" % (Logger._NAMES.get(level, "INFO"), message))

    @staticmethod
    def log_info(message):
        Logger.log(message, Logger.INFO)

    @staticmethod
    def log_warn(message):
        Logger.log(message, Logger.WARNING)

    @staticmethod
    def log_error(message):
        Logger.log(message, Logger.ERROR)

    @staticmethod
    def log_verbose(message):
        Logger.log(message, Logger.VERBOSE)


# ---------------------------------------------------------------------------
# Custom metrics
# ---------------------------------------------------------------------------

class Metric:
    """One series of a MetricFamily (a set of labels), made with
    family.Metric(labels=..., buckets=...). In the server its value is on
    /metrics under the family's name and these labels."""

    def __init__(self, family, labels=None, buckets=None):
        if labels is not None and not isinstance(labels, dict):
            raise TritonModelException("Failed to create metric. Labels must be a dictionary.")
        labels = dict(labels or {})
        for key, val in labels.items():
            if not isinstance(key, str) or not isinstance(val, str):
                raise TritonModelException(
                    "Failed to create metric. Labels must map strings to strings; label %r "
                    "has a %s value" % (key, type(val).__name__))
        if buckets is not None:
            if not isinstance(buckets, list):
                raise TritonModelException("Failed to create metric. Buckets must be a list.")
            if family._kind != MetricFamily.HISTOGRAM:
                raise TritonModelException("Failed to create metric. Unexpected buckets found.")
        elif family._kind == MetricFamily.HISTOGRAM:
            raise TritonModelException("Failed to create metric. Missing required buckets.")
        self._family = family  # keeps the family (and its handle) alive
        self._labels = labels
        self._buckets = buckets
        self._native = None
        self._value = 0.0
        if family._native is not None:
            try:
                self._native = family._native.metric(
                    sorted(labels.items()), [float(b) for b in buckets] if buckets else None)
            except _host.HostError as e:
                raise TritonModelException("Failed to create metric: %s" % e.args[1]) from None

    def _update(self, op, name, value):
        value = float(value)
        if self._native is not None:
            try:
                self._native.update(op, value)
            except _host.HostError as e:
                raise TritonModelException("Failed to %s metric value: %s"
                                           % (name, e.args[1])) from None
            return
        # Plain Python (no server): the host's rules, kept locally.
        kind = self._family._kind
        if op == 0:
            if kind == MetricFamily.HISTOGRAM:
                raise TritonModelException("a histogram cannot be incremented; use observe()")
            if kind == MetricFamily.COUNTER and not value >= 0:
                raise TritonModelException("a counter only goes up; increment() needs a value "
                                           ">= 0, got %r" % value)
            self._value += value
        elif op == 1:
            if kind != MetricFamily.GAUGE:
                raise TritonModelException("only a gauge can be set")
            self._value = value
        else:
            if kind != MetricFamily.HISTOGRAM:
                raise TritonModelException("only a histogram observes values")
            self._value += value

    def increment(self, value):
        """COUNTER: add value >= 0. GAUGE: add any value."""
        self._update(0, "increment", value)

    def set(self, value):
        """GAUGE only."""
        self._update(1, "set", value)

    def observe(self, value):
        """HISTOGRAM only."""
        self._update(2, "observe", value)

    def value(self):
        """The current value of a COUNTER or GAUGE (in the server: this
        process's series; see the Torii docs)."""
        if self._native is not None:
            try:
                return self._native.value()
            except _host.HostError as e:
                raise TritonModelException("Failed to get metric value: %s" % e.args[1]) from None
        if self._family._kind == MetricFamily.HISTOGRAM:
            raise TritonModelException("a histogram has no single value")
        return self._value


class MetricFamily:
    """A custom metric family, exported on the server's /metrics
    (Prometheus) with its name, description and kind. Families are
    server-wide: the same name and kind from another instance or model is the
    same family; another kind is an error."""

    COUNTER = 0
    GAUGE = 1
    HISTOGRAM = 2

    def __init__(self, name, description, kind):
        if kind not in (MetricFamily.COUNTER, MetricFamily.GAUGE, MetricFamily.HISTOGRAM):
            raise TritonModelException("MetricFamily kind must be COUNTER, GAUGE or HISTOGRAM")
        if not isinstance(name, str) or not isinstance(description, str):
            raise TritonModelException("MetricFamily name and description must be strings")
        self._name = name
        self._description = description
        self._kind = kind
        self._native = None
        native = None
        if _host is not None:
            try:
                native = _current_native()
            except ImportError:
                native = None
        if native is not None:
            try:
                self._native = native.metric_family(name, description, kind + 1)
            except _host.HostError as e:
                raise TritonModelException("Error when creating MetricFamily: %s"
                                           % e.args[1]) from None

    def Metric(self, labels=None, buckets=None):  # noqa: N802 (Triton's name)
        return Metric(self, labels, buckets)


def get_model_dir():
    """The directory that holds model.py (the version directory)."""
    if _host is None:
        raise TritonModelException("get_model_dir() needs the Torii server (in plain Python, "
                                   "use os.path.dirname(__file__))")
    from torii_python_driver import current_model_dir
    return current_model_dir()


def _no_model_control(*_args, **_kwargs):
    raise TritonModelException("loading and unloading models from a model (pb_utils.load_model, "
                               "unload_model, is_model_ready) is not supported by Torii")


load_model = _no_model_control
unload_model = _no_model_control
is_model_ready = _no_model_control
