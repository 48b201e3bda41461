"""ctypes binding of the CPU backend's C table, for checking ops against PyTorch by hand."""
import ctypes as C
import os
import re

import numpy as np

LIB = os.environ.get("CRB_LIB", "/tmp/crb_cpu_test/libcrb_cpu.so")
F32, F64, F16, BF16, I32, I64, U8 = range(7)
NP = {F32: np.float32, F64: np.float64, I32: np.int32, I64: np.int64, U8: np.uint8, F16: np.float16, BF16: np.uint16}

class Error(C.Structure):
    _fields_ = [("code", C.c_int), ("op", C.c_char * 64), ("status", C.c_char * 128), ("message", C.c_char * 1024)]

class ConvDesc(C.Structure):
    _fields_ = [(n, C.c_int) for n in "n c h w k r s stride_h stride_w pad_h pad_w dil_h dil_w groups out_h out_w dtype layout".split()]

class BnDesc(C.Structure):
    _fields_ = [(n, C.c_int) for n in "n c h w".split()] + [("eps", C.c_double), ("momentum", C.c_double), ("dtype", C.c_int), ("layout", C.c_int)]

class PoolDesc(C.Structure):
    _fields_ = [(n, C.c_int) for n in "n c h w kernel_h kernel_w stride_h stride_w pad_h pad_w out_h out_w dtype layout".split()]

class LinearDesc(C.Structure):
    _fields_ = [(n, C.c_int) for n in "m k n dtype".split()]

class SgdParam(C.Structure):
    _fields_ = [("param", C.c_void_p), ("grad", C.c_void_p), ("momentum_buf", C.c_void_p), ("numel", C.c_int64), ("init_momentum", C.c_int)]

class SgdDesc(C.Structure):
    _fields_ = [(n, C.c_double) for n in "lr momentum dampening weight_decay".split()] + [("nesterov", C.c_int), ("maximize", C.c_int), ("dtype", C.c_int)]

class ImageDesc(C.Structure):
    _fields_ = [(n, C.c_int) for n in "n c h w out_h out_w".split()] + [("mean", C.c_double), ("std", C.c_double), ("dtype", C.c_int)]

class MemStats(C.Structure):
    _fields_ = [(n, C.c_uint64) for n in "allocated reserved peak_allocated alloc_count cache_hits".split()]

class Capabilities(C.Structure):
    _fields_ = [("layouts", C.c_uint32)] + [(n, C.c_int) for n in "maxpool_keeps_indices fused_bn_add_relu host_visible_memory".split()]

# The table's entries come from the manifest, native/backend/ops.def: CRB_OP(name, (params), (args)).
def _manifest():
    text = re.sub(r"//[^\n]*", "", open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "backend", "ops.def")).read())
    rows = []
    for m in re.finditer(r"^CRB_OP\(", text, re.M):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        name, rest = text[m.end():i - 1].split(",", 1)
        params = rest[rest.index("(") + 1:rest.index(")")].strip()
        rows.append((name.strip(), [] if params == "void" else [_ctype(p) for p in params.split(",")]))
    return rows

def _ctype(param):
    base = param.strip().rsplit(" ", 1)[0]
    if "*" in param:
        return C.c_void_p
    return {"int": C.c_int, "int64_t": C.c_int64, "double": C.c_double, "size_t": C.c_size_t}.get(base, C.c_int)  # enums: int

SIGS = _manifest()

class Table(C.Structure):
    _fields_ = [("abi_version", C.c_uint32), ("name", C.c_char_p), ("capabilities", Capabilities),
                ("last_error", C.c_void_p), ("device_count", C.c_void_p)] + [(n, C.c_void_p) for n, _ in SIGS]

lib = C.CDLL(LIB)
lib.crb_cpu_backend.restype = C.POINTER(Table)
table = lib.crb_cpu_backend().contents
last_error = C.CFUNCTYPE(C.POINTER(Error))(table.last_error)

class CrbError(Exception):
    pass

def _wrap(name, args):
    fn = C.CFUNCTYPE(C.c_int, *args)(getattr(table, name))
    def call(*a):
        st = fn(*a)
        if st != 0:
            e = last_error().contents
            raise CrbError(f"{name}: {e.status.decode()} [{e.op.decode()}] {e.message.decode()}")
        return st
    return call

ops = {n: _wrap(n, a) for n, a in SIGS}

def ptr(a):
    return None if a is None else a.ctypes.data_as(C.c_void_p)

def ref(s):
    return C.byref(s)
