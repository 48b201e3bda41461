"""ctypes binding of the CPU backend's C table, for checking ops against PyTorch by hand."""
import ctypes as C
import os

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

P, I, L, D, S = C.c_void_p, C.c_int, C.c_int64, C.c_double, C.c_size_t
SIGS = [
    ("init", []), ("last_error", None), ("device_count", None), ("device_info", [I, P]), ("set_option", [I, L]),
    ("synchronize", []), ("alloc", [S, P]), ("free", [P]), ("memory_stats", [P]), ("empty_cache", []),
    ("copy_from_host", [P, P, S]), ("copy_device", [P, P, S]), ("read_begin", [P, S, P]), ("read_finish", [P, P]),
    ("fill", [P, L, I, D]), ("cast", [P, I, P, I, L]), ("add", [P, P, P, L, I]), ("axpby", [P, P, D, D, L, I]),
    ("relu_forward", [P, P, L, I]), ("relu_backward", [P, P, P, L, I]), ("sum", [P, P, L, I]),
    ("conv2d_forward", [P] * 5), ("conv2d_backward_data", [P] * 4), ("conv2d_backward_filter", [P] * 4),
    ("conv2d_backward_bias", [P] * 3), ("batchnorm_forward_train", [P] * 9), ("batchnorm_forward_eval", [P] * 7),
    ("batchnorm_backward_train", [P] * 9), ("batchnorm_backward_eval", [P] * 9),
    ("maxpool2d_forward", [P] * 4), ("maxpool2d_backward", [P] * 6), ("adaptive_avgpool2d_forward", [P] * 3),
    ("adaptive_avgpool2d_backward", [P] * 3), ("linear_forward", [P] * 5), ("linear_backward", [P] * 7),
    ("cross_entropy_forward", [I, I, I, P, P, P, P]), ("cross_entropy_backward", [I, I, I, P, P, P, P]),
    ("accuracy_count", [I, I, I, P, P, P]), ("sgd_step", [P, P, I]), ("images_u8_to_float", [P, P, P]),
    ("convert_layout", [P, I, P, I, I, I, I, I, I]), ("bn_add_relu_reserve_size", [P, P]),
    ("bn_add_relu_forward_train", [P] * 11 + [S]), ("bn_add_relu_backward_train", [P] * 9 + [S] + [P] * 4),
]

class Table(C.Structure):
    _fields_ = [("abi_version", C.c_uint32), ("name", C.c_char_p)] + [(n, C.c_void_p) for n, _ in SIGS]

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

ops = {n: _wrap(n, a) for n, a in SIGS if a is not None}

def ptr(a):
    return None if a is None else a.ctypes.data_as(C.c_void_p)

def ref(s):
    return C.byref(s)
