// DLPack in and out of the Python runner, without numpy's help: numpy 1.24
// refuses to export read-only arrays (every input is one) and has no
// bfloat16, so Tensor.to_dlpack()/from_dlpack() go through here.
#include <dlpack/dlpack.h>

#include <cstring>
#include <vector>

#include "host_module.h"

namespace torii_python {
namespace {

constexpr char kCapsuleName[] = "dltensor";
constexpr char kUsedCapsuleName[] = "used_dltensor";

// What a DLManagedTensor we export owns.
struct Export {
  DLManagedTensor managed;
  Py_buffer view;  // keeps the exporter's memory alive
  std::vector<int64_t> shape;
};

void DeleteExport(DLManagedTensor* managed) {
  auto* e = static_cast<Export*>(managed->manager_ctx);
  // May run on any thread (the consumer frees its tensor whenever it likes).
  PyGILState_STATE g = PyGILState_Ensure();
  PyBuffer_Release(&e->view);
  PyGILState_Release(g);
  delete e;
}

void ExportCapsuleDestructor(PyObject* capsule) {
  // Only a capsule nobody consumed still owns its tensor.
  if (!PyCapsule_IsValid(capsule, kCapsuleName)) return;
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, kCapsuleName));
  if (managed != nullptr && managed->deleter != nullptr) managed->deleter(managed);
}

void ImportOwnerDestructor(PyObject* capsule) {
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "torii.dlpack_owner"));
  if (managed != nullptr && managed->deleter != nullptr) managed->deleter(managed);
}

}  // namespace

// to_dlpack(owner, dl_code, bits, shape) -> a "dltensor" capsule viewing
// owner's (C-contiguous) bytes with the given element type and shape.
PyObject* ToDlpack(PyObject*, PyObject* args) {
  PyObject* owner = nullptr;
  int code = 0;
  int bits = 0;
  PyObject* shape_obj = nullptr;
  if (!PyArg_ParseTuple(args, "OiiO", &owner, &code, &bits, &shape_obj)) return nullptr;
  auto* e = new Export();
  if (PyObject_GetBuffer(owner, &e->view, PyBUF_C_CONTIGUOUS) < 0) {
    delete e;
    return nullptr;
  }
  Ref fast(PySequence_Fast(shape_obj, "shape must be a sequence"));
  if (!fast) {
    PyBuffer_Release(&e->view);
    delete e;
    return nullptr;
  }
  int64_t elements = 1;
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast.get()); ++i) {
    const long long d = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fast.get(), i));
    if (d == -1 && PyErr_Occurred()) {
      PyBuffer_Release(&e->view);
      delete e;
      return nullptr;
    }
    e->shape.push_back(d);
    elements *= d;
  }
  if (elements * (bits / 8) != e->view.len) {
    PyErr_Format(PyExc_ValueError, "to_dlpack: %zd bytes cannot hold %lld elements of %d bits",
                 e->view.len, static_cast<long long>(elements), bits);
    PyBuffer_Release(&e->view);
    delete e;
    return nullptr;
  }
  DLTensor& t = e->managed.dl_tensor;
  t.data = e->view.buf;
  t.device = {kDLCPU, 0};
  t.ndim = static_cast<int32_t>(e->shape.size());
  t.dtype = {static_cast<uint8_t>(code), static_cast<uint8_t>(bits), 1};
  t.shape = e->shape.data();
  t.strides = nullptr;  // compact row-major
  t.byte_offset = 0;
  e->managed.manager_ctx = e;
  e->managed.deleter = DeleteExport;
  PyObject* capsule = PyCapsule_New(&e->managed, kCapsuleName, ExportCapsuleDestructor);
  if (capsule == nullptr) DeleteExport(&e->managed);
  return capsule;
}

// from_dlpack(obj) -> (Buffer, dl_code, bits, lanes, shape). `obj` is a
// "dltensor" capsule or has __dlpack__(); the tensor must be on the CPU and
// compact row-major. The Buffer owns the tensor (it calls the producer's
// deleter when the last view is gone).
PyObject* FromDlpack(PyObject*, PyObject* args) {
  PyObject* obj = nullptr;
  if (!PyArg_ParseTuple(args, "O", &obj)) return nullptr;
  Ref capsule;
  if (PyCapsule_CheckExact(obj)) {
    capsule = Ref::Borrow(obj);
  } else {
    capsule = Ref(PyObject_CallMethod(obj, "__dlpack__", nullptr));
    if (!capsule) return nullptr;
  }
  if (!PyCapsule_IsValid(capsule.get(), kCapsuleName)) {
    PyErr_SetString(PyExc_ValueError,
                    "from_dlpack needs an unused DLPack capsule (\"dltensor\") or an object "
                    "with __dlpack__()");
    return nullptr;
  }
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.get(), kCapsuleName));
  const DLTensor& t = managed->dl_tensor;
  if (t.device.device_type != kDLCPU && t.device.device_type != kDLCUDAHost) {
    PyErr_Format(PyExc_ValueError, "from_dlpack: the tensor is on device type %d; Torii's Python "
                 "runner works on the CPU only (move it with .cpu())",
                 static_cast<int>(t.device.device_type));
    return nullptr;
  }
  int64_t elements = 1;
  for (int32_t i = 0; i < t.ndim; ++i) elements *= t.shape[i];
  if (t.strides != nullptr && elements > 0) {
    int64_t expect = 1;
    for (int32_t i = t.ndim - 1; i >= 0; --i) {
      if (t.shape[i] != 1 && t.strides[i] != expect) {
        PyErr_SetString(PyExc_ValueError,
                        "from_dlpack: the tensor is not contiguous in C order (use "
                        ".contiguous() first)");
        return nullptr;
      }
      expect *= t.shape[i];
    }
  }
  const size_t bytes = static_cast<size_t>(elements) * ((t.dtype.bits * t.dtype.lanes + 7) / 8);
  Ref shape(PyTuple_New(t.ndim));
  if (!shape) return nullptr;
  for (int32_t i = 0; i < t.ndim; ++i) {
    PyTuple_SET_ITEM(shape.get(), i, PyLong_FromLongLong(t.shape[i]));
  }
  // From here the tensor is ours: the capsule is marked used.
  if (PyCapsule_SetName(capsule.get(), kUsedCapsuleName) < 0) return nullptr;
  Ref owner(PyCapsule_New(managed, "torii.dlpack_owner", ImportOwnerDestructor));
  if (!owner) {
    if (managed->deleter != nullptr) managed->deleter(managed);
    return nullptr;
  }
  char* data = static_cast<char*>(t.data) + t.byte_offset;
  Ref buffer(NewBufferObject(data, bytes, /*readonly=*/false, owner.get()));
  if (!buffer) return nullptr;
  return Py_BuildValue("(OiiiO)", buffer.get(), static_cast<int>(t.dtype.code),
                       static_cast<int>(t.dtype.bits), static_cast<int>(t.dtype.lanes), shape.get());
}

}  // namespace torii_python
