"""Checks every CPU backend op against PyTorch (run with the reference venv's python)."""
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from crb import *  # noqa

torch.manual_seed(0)
failures = []

def check(name, got, want, tol):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        failures.append(f"{name}: shape {got.shape} != {want.shape}")
        print("FAIL", name, "shape")
        return
    err = np.max(np.abs(got - want) / (1 + np.abs(want))) if got.size else 0.0
    ok = err <= tol or (np.isnan(got) == np.isnan(want)).all() and np.nanmax(np.abs(got - want) / (1 + np.abs(want))) <= tol
    print(("ok  " if ok else "FAIL"), f"{name}: rel err {err:.2e}")
    if not ok:
        failures.append(f"{name}: {err}")

def npdt(dt):
    return NP[dt]

def tdt(dt):
    return torch.float32 if dt == F32 else torch.float64

def tol(dt):
    return 2e-5 if dt == F32 else 1e-12

def conv_case(dt, n, c, h, w, k, r, s, stride, pad, dil, groups, bias=True):
    x = torch.randn(n, c, h, w, dtype=tdt(dt))
    wt = torch.randn(k, c // groups, r, s, dtype=tdt(dt))
    b = torch.randn(k, dtype=tdt(dt)) if bias else None
    x.requires_grad_(); wt.requires_grad_()
    if b is not None: b.requires_grad_()
    y = F.conv2d(x, wt, b, stride, pad, dil, groups)
    dy = torch.randn_like(y)
    y.backward(dy)
    oh, ow = y.shape[2], y.shape[3]
    d = ConvDesc(n, c, h, w, k, r, s, stride, stride, pad, pad, dil, dil, groups, oh, ow, dt, 0)
    xn, wn, dyn = x.detach().numpy().copy(), wt.detach().numpy().copy(), dy.numpy().copy()
    bn = b.detach().numpy().copy() if b is not None else None
    yn = np.full(y.shape, np.nan, dtype=npdt(dt))
    ops["conv2d_forward"](ref(d), ptr(xn), ptr(wn), ptr(bn), ptr(yn))
    tag = f"conv {dt} x{(n, c, h, w)} k{k} {r}x{s} s{stride} p{pad} d{dil} g{groups}"
    check(tag + " fwd", yn, y.detach().numpy(), tol(dt) * 10)
    dxn = np.full(x.shape, np.nan, dtype=npdt(dt))
    ops["conv2d_backward_data"](ref(d), ptr(dyn), ptr(wn), ptr(dxn))
    check(tag + " dx", dxn, x.grad.numpy(), tol(dt) * 10)
    dwn = np.full(wt.shape, np.nan, dtype=npdt(dt))
    ops["conv2d_backward_filter"](ref(d), ptr(xn), ptr(dyn), ptr(dwn))
    check(tag + " dw", dwn, wt.grad.numpy(), tol(dt) * 30)
    if b is not None:
        dbn = np.full(b.shape, np.nan, dtype=npdt(dt))
        ops["conv2d_backward_bias"](ref(d), ptr(dyn), ptr(dbn))
        check(tag + " db", dbn, b.grad.numpy(), tol(dt) * 30)

for dt in (F32, F64):
    conv_case(dt, 3, 5, 17, 13, 7, 3, 3, 2, 1, 1, 1)
    conv_case(dt, 2, 3, 23, 19, 8, 7, 7, 2, 3, 1, 1)
    conv_case(dt, 3, 6, 11, 9, 4, 1, 1, 2, 0, 1, 1)
    conv_case(dt, 3, 6, 11, 9, 4, 1, 1, 1, 0, 1, 1)
    conv_case(dt, 3, 6, 11, 9, 4, 1, 1, 1, 0, 1, 2)
    conv_case(dt, 3, 4, 12, 10, 6, 3, 3, 1, 1, 1, 2)
    conv_case(dt, 2, 5, 17, 13, 7, 3, 3, 1, 2, 2, 1)
    conv_case(dt, 2, 4, 9, 9, 4, 3, 3, 1, 1, 1, 4, bias=False)
    conv_case(dt, 1, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1)
    conv_case(dt, 4, 16, 8, 8, 32, 3, 5, 1, 2, 1, 1)
    conv_case(dt, 2, 3, 6, 7, 4, 3, 3, 1, 3, 1, 1)  # pad > dil*(r-1): col2im fallback
    conv_case(dt, 1, 2, 1, 1, 3, 1, 1, 1, 0, 1, 1)
    conv_case(dt, 2, 3, 5, 5, 2, 5, 5, 1, 0, 1, 1)  # output 1x1
    # many small images: chunks of several images per GEMM
    conv_case(dt, 37, 8, 7, 7, 16, 3, 3, 1, 1, 1, 1)
    conv_case(dt, 33, 8, 7, 7, 16, 3, 3, 2, 1, 1, 1)
    conv_case(dt, 33, 8, 7, 7, 16, 1, 1, 2, 0, 1, 1)
    conv_case(dt, 45, 16, 1, 1, 8, 3, 3, 1, 1, 1, 1)
    conv_case(dt, 45, 16, 2, 2, 8, 3, 3, 1, 1, 1, 2)
    conv_case(dt, 5, 6, 1, 1, 4, 3, 3, 2, 1, 1, 1)  # dead taps, stride 2
    conv_case(dt, 5, 6, 2, 2, 4, 5, 5, 1, 2, 1, 1)  # dead outer ring of a 5x5
    conv_case(dt, 5, 6, 3, 3, 4, 3, 3, 1, 2, 2, 1)  # dilation 2 on 3x3 map

# batch norm
def bn_case(dt, n, c, h, w, train, scale=3.0, shift=1.0):
    x = torch.randn(n, c, h, w, dtype=tdt(dt)) * scale + shift
    g = torch.randn(c, dtype=tdt(dt)); b = torch.randn(c, dtype=tdt(dt))
    rm = torch.randn(c, dtype=tdt(dt)); rv = torch.rand(c, dtype=tdt(dt)) + 0.5
    rm0, rv0 = rm.clone(), rv.clone()
    x.requires_grad_(); g.requires_grad_(); b.requires_grad_()
    y = F.batch_norm(x, rm, rv, g, b, training=train, momentum=0.1, eps=1e-5)
    dy = torch.randn_like(y)
    y.backward(dy)
    d = BnDesc(n, c, h, w, 1e-5, 0.1, dt, 0)
    T = npdt(dt)
    xn, gn, bn_, dyn = [t.detach().numpy().copy() for t in (x, g, b, dy)]
    rmn, rvn = rm0.numpy().copy(), rv0.numpy().copy()
    yn = np.empty(x.shape, T); sm = np.empty(c, T); si = np.empty(c, T)
    tag = f"bn {dt} {(n, c, h, w)} {'train' if train else 'eval'} shift {shift}"
    # mean >> std: float32 cannot represent x - mean well; PyTorch itself is 3e-3 off the exact value here
    tol = (lambda dt: 1e-2 if dt == F32 else 1e-9) if abs(shift) > 100 else globals()["tol"]
    dxn = np.empty(x.shape, T); dgn = np.empty(c, T); dbn = np.empty(c, T)
    if train:
        ops["batchnorm_forward_train"](ref(d), ptr(xn), ptr(gn), ptr(bn_), ptr(yn), ptr(rmn), ptr(rvn), ptr(sm), ptr(si))
        check(tag + " y", yn, y.detach().numpy(), tol(dt) * 10)
        check(tag + " running_mean", rmn, rm.numpy(), tol(dt))
        check(tag + " running_var", rvn, rv.numpy(), tol(dt))
        xd = x.detach().double()
        mean = xd.mean((0, 2, 3)); var = xd.var((0, 2, 3), unbiased=False)
        check(tag + " save_mean", sm, mean.numpy(), tol(dt))
        check(tag + " save_invstd", si, (1 / torch.sqrt(var + 1e-5)).numpy(), tol(dt))
        ops["batchnorm_backward_train"](ref(d), ptr(xn), ptr(dyn), ptr(gn), ptr(sm), ptr(si), ptr(dxn), ptr(dgn), ptr(dbn))
    else:
        ops["batchnorm_forward_eval"](ref(d), ptr(xn), ptr(gn), ptr(bn_), ptr(rmn), ptr(rvn), ptr(yn))
        check(tag + " y", yn, y.detach().numpy(), tol(dt) * 10)
        ops["batchnorm_backward_eval"](ref(d), ptr(xn), ptr(dyn), ptr(gn), ptr(rmn), ptr(rvn), ptr(dxn), ptr(dgn), ptr(dbn))
    check(tag + " dx", dxn, x.grad.numpy(), tol(dt) * 50)
    check(tag + " dgamma", dgn, g.grad.numpy(), tol(dt) * 50)
    check(tag + " dbeta", dbn, b.grad.numpy(), tol(dt) * 50)

for dt in (F32, F64):
    for train in (True, False):
        bn_case(dt, 4, 3, 5, 7, train)
        bn_case(dt, 32, 16, 14, 14, train)
        bn_case(dt, 2, 5, 1, 1, train)
        bn_case(dt, 8, 4, 9, 9, train, scale=0.01, shift=1000.0)
# fused y = relu(bn(x) + z), as the residual block's tail
def bn_add_relu_case(dt, n, c, h, w):
    x = (torch.randn(n, c, h, w, dtype=tdt(dt)) * 2 + 0.5).requires_grad_()
    z = torch.randn(n, c, h, w, dtype=tdt(dt)).requires_grad_()
    g = torch.randn(c, dtype=tdt(dt)).requires_grad_(); b = torch.randn(c, dtype=tdt(dt)).requires_grad_()
    rm = torch.randn(c, dtype=tdt(dt)); rv = torch.rand(c, dtype=tdt(dt)) + 0.5
    rmn, rvn = rm.numpy().copy(), rv.numpy().copy()
    y = F.relu(F.batch_norm(x, rm, rv, g, b, training=True, momentum=0.1, eps=1e-5) + z)
    dy = torch.randn_like(y); y.backward(dy)
    T = npdt(dt); d = BnDesc(n, c, h, w, 1e-5, 0.1, dt, 0)
    xn, zn, gn, bn_, dyn = [t.detach().numpy().copy() for t in (x, z, g, b, dy)]
    size = C.c_size_t(99); ops["bn_add_relu_reserve_size"](ref(d), C.byref(size))
    res = np.zeros(max(1, size.value), np.uint8)
    yn = np.empty(x.shape, T); sm = np.empty(c, T); si = np.empty(c, T)
    ops["bn_add_relu_forward_train"](ref(d), ptr(xn), ptr(zn), ptr(gn), ptr(bn_), ptr(yn), ptr(rmn), ptr(rvn), ptr(sm), ptr(si), ptr(res), size.value)
    dxn = np.empty(x.shape, T); dzn = np.empty(x.shape, T); dgn = np.empty(c, T); dbn = np.empty(c, T)
    ops["bn_add_relu_backward_train"](ref(d), ptr(xn), ptr(yn), ptr(dyn), ptr(gn), ptr(bn_), ptr(sm), ptr(si), ptr(res), size.value, ptr(dxn), ptr(dzn), ptr(dgn), ptr(dbn))
    tag = f"bn+add+relu {dt} {(n, c, h, w)}"
    check(tag + " y", yn, y.detach().numpy(), tol(dt) * 10)
    check(tag + " running_mean", rmn, rm.numpy(), tol(dt)); check(tag + " running_var", rvn, rv.numpy(), tol(dt))
    check(tag + " dx", dxn, x.grad.numpy(), tol(dt) * 50); check(tag + " dz", dzn, z.grad.numpy(), tol(dt))
    check(tag + " dgamma", dgn, g.grad.numpy(), tol(dt) * 50); check(tag + " dbeta", dbn, b.grad.numpy(), tol(dt) * 50)

for dt in (F32, F64):
    bn_add_relu_case(dt, 4, 3, 5, 7)
    bn_add_relu_case(dt, 16, 8, 14, 14)
try:
    ops["bn_add_relu_reserve_size"](ref(BnDesc(2, 3, 4, 4, 1e-5, 0.1, F32, 1)), C.byref(C.c_size_t()))
    failures.append("fused BN accepted NHWC")
except CrbError as e:
    print("ok   fused BN declines NHWC:", e)

try:
    d = BnDesc(1, 2, 1, 1, 1e-5, 0.1, F32, 0)
    z = np.zeros(2, np.float32)
    ops["batchnorm_forward_train"](ref(d), ptr(z), None, None, ptr(z.copy()), None, None, None, None)
    failures.append("bn n*h*w == 1 accepted")
except CrbError as e:
    print("ok   bn single value rejected:", e)

# pooling
def maxpool_case(dt, n, c, h, w, k, s, p, ceil=False):
    x = torch.randn(n, c, h, w, dtype=tdt(dt))
    x[0, 0, 0, :3] = 5.0  # ties: the first max wins
    x.requires_grad_()
    y, idx = F.max_pool2d(x, k, s, p, ceil_mode=ceil, return_indices=True)
    dy = torch.randn_like(y)
    y.backward(dy)
    oh, ow = y.shape[2:]
    d = PoolDesc(n, c, h, w, k, k, s, s, p, p, oh, ow, dt, 0)
    T = npdt(dt)
    xn, dyn = x.detach().numpy().copy(), dy.numpy().copy()
    yn = np.empty(y.shape, T); ii = np.empty(y.shape, np.int32); dxn = np.empty(x.shape, T)
    ops["maxpool2d_forward"](ref(d), ptr(xn), ptr(yn), ptr(ii))
    tag = f"maxpool {dt} {(n, c, h, w)} k{k} s{s} p{p} ceil{ceil}"
    check(tag + " y", yn, y.detach().numpy(), 0)
    check(tag + " idx", ii, idx.numpy(), 0)
    ops["maxpool2d_backward"](ref(d), ptr(xn), ptr(yn), ptr(dyn), ptr(ii), ptr(dxn))
    check(tag + " dx", dxn, x.grad.numpy(), tol(dt))
    ops["maxpool2d_backward"](ref(d), ptr(xn), ptr(yn), ptr(dyn), None, ptr(dxn))
    check(tag + " dx (no idx)", dxn, x.grad.numpy(), tol(dt))

def avgpool_case(dt, n, c, h, w, oh, ow):
    x = torch.randn(n, c, h, w, dtype=tdt(dt), requires_grad=True)
    y = F.adaptive_avg_pool2d(x, (oh, ow))
    dy = torch.randn_like(y)
    y.backward(dy)
    d = PoolDesc(n, c, h, w, 0, 0, 0, 0, 0, 0, oh, ow, dt, 0)
    T = npdt(dt)
    xn, dyn = x.detach().numpy().copy(), dy.numpy().copy()
    yn = np.empty(y.shape, T); dxn = np.empty(x.shape, T)
    ops["adaptive_avgpool2d_forward"](ref(d), ptr(xn), ptr(yn))
    ops["adaptive_avgpool2d_backward"](ref(d), ptr(dyn), ptr(dxn))
    tag = f"avgpool {dt} {(n, c, h, w)} -> {(oh, ow)}"
    check(tag + " y", yn, y.detach().numpy(), tol(dt))
    check(tag + " dx", dxn, x.grad.numpy(), tol(dt))

for dt in (F32, F64):
    maxpool_case(dt, 2, 3, 9, 11, 3, 2, 1)
    maxpool_case(dt, 2, 3, 9, 11, 3, 2, 1, ceil=True)
    maxpool_case(dt, 2, 3, 8, 8, 2, 2, 0)
    maxpool_case(dt, 1, 2, 7, 5, 3, 1, 1)
    avgpool_case(dt, 2, 3, 7, 7, 1, 1)
    avgpool_case(dt, 2, 3, 10, 7, 3, 4)
    avgpool_case(dt, 2, 3, 5, 5, 7, 6)

# linear
for dt in (F32, F64):
    for (m, k, n) in ((5, 7, 3), (64, 512, 10), (1, 1, 1), (130, 33, 65)):
        x = torch.randn(m, k, dtype=tdt(dt), requires_grad=True)
        wt = torch.randn(n, k, dtype=tdt(dt), requires_grad=True)
        b = torch.randn(n, dtype=tdt(dt), requires_grad=True)
        y = F.linear(x, wt, b); dy = torch.randn_like(y); y.backward(dy)
        d = LinearDesc(m, k, n, dt)
        T = npdt(dt)
        xn, wn, bn_, dyn = [t.detach().numpy().copy() for t in (x, wt, b, dy)]
        yn = np.empty((m, n), T); dxn = np.empty((m, k), T); dwn = np.empty((n, k), T); dbn = np.empty(n, T)
        ops["linear_forward"](ref(d), ptr(xn), ptr(wn), ptr(bn_), ptr(yn))
        ops["linear_backward"](ref(d), ptr(xn), ptr(wn), ptr(dyn), ptr(dxn), ptr(dwn), ptr(dbn))
        tag = f"linear {dt} {(m, k, n)}"
        check(tag + " y", yn, y.detach().numpy(), tol(dt) * 10)
        check(tag + " dx", dxn, x.grad.numpy(), tol(dt) * 10)
        check(tag + " dw", dwn, wt.grad.numpy(), tol(dt) * 10)
        check(tag + " db", dbn, b.grad.numpy(), tol(dt) * 10)

# cross entropy
for dt in (F32, F64):
    for (n, cl, scale) in ((8, 10, 1.0), (33, 7, 50.0), (1, 3, 1.0)):
        z = (torch.randn(n, cl, dtype=tdt(dt)) * scale).requires_grad_()
        lab = torch.randint(0, cl, (n,))
        loss = F.cross_entropy(z, lab); loss.backward(torch.tensor(0.7, dtype=tdt(dt)))
        T = npdt(dt)
        zn = z.detach().numpy().copy(); ln = lab.numpy().astype(np.int32)
        lo = np.empty(1, T); pr = np.empty((n, cl), T); dz = np.empty((n, cl), T); dl = np.array([0.7], T)
        ops["cross_entropy_forward"](n, cl, dt, ptr(zn), ptr(ln), ptr(lo), ptr(pr))
        ops["cross_entropy_backward"](n, cl, dt, ptr(pr), ptr(ln), ptr(dl), ptr(dz))
        cnt = np.zeros(1, np.int32)
        ops["accuracy_count"](n, cl, dt, ptr(zn), ptr(ln), ptr(cnt))
        tag = f"ce {dt} {(n, cl, scale)}"
        check(tag + " loss", lo, [loss.item()], tol(dt))
        check(tag + " probs", pr, torch.softmax(z.detach(), 1).numpy(), tol(dt))
        check(tag + " dlogits", dz, z.grad.numpy(), tol(dt))
        check(tag + " correct", cnt, [(z.detach().argmax(1) == lab).sum().item()], 0)

# sgd
for dt in (F32, F64):
    for (lr, mom, damp, wd, nest, maxi) in ((0.1, 0, 0, 0, 0, 0), (0.05, 0.9, 0, 1e-4, 0, 0), (0.05, 0.9, 0.1, 1e-2, 0, 1),
                                            (0.01, 0.9, 0, 5e-4, 1, 0)):
        p = torch.randn(1000, dtype=tdt(dt)); tp = p.clone().requires_grad_()
        opt = torch.optim.SGD([tp], lr=lr, momentum=mom, dampening=damp, weight_decay=wd, nesterov=bool(nest), maximize=bool(maxi))
        pn = p.numpy().copy(); buf = np.zeros(1000, npdt(dt))
        for it in range(3):
            g = torch.randn(1000, dtype=tdt(dt))
            tp.grad = g.clone(); opt.step()
            gn = g.numpy().copy()
            prm = SgdParam(ptr(pn), ptr(gn), ptr(buf) if mom else None, 1000, 1 if it == 0 else 0)
            ops["sgd_step"](ref(SgdDesc(lr, mom, damp, wd, nest, maxi, dt)), ref(prm), 1)
        check(f"sgd {dt} lr{lr} m{mom} d{damp} wd{wd} n{nest} max{maxi}", pn, tp.detach().numpy(), tol(dt))

# images
for dt in (F32, F64):
    for (h, w, oh, ow) in ((28, 28, 28, 28), (28, 28, 56, 56), (28, 28, 96, 96), (30, 20, 13, 17), (5, 7, 224, 224)):
        u = torch.randint(0, 256, (3, 2, h, w), dtype=torch.uint8)
        want = F.interpolate(u.to(tdt(dt)), size=(oh, ow), mode="bilinear", align_corners=False, antialias=False)
        want = (want / 255 - 0.2860) / 0.3530
        out = np.empty((3, 2, oh, ow), npdt(dt)); un = u.numpy().copy()
        ops["images_u8_to_float"](ref(ImageDesc(3, 2, h, w, oh, ow, 0.2860, 0.3530, dt)), ptr(un), ptr(out))
        check(f"images {dt} {(h, w)} -> {(oh, ow)}", out, want.numpy(), tol(dt))

# elementwise
x = (np.random.randn(100003) * 3).astype(np.float32)
for name, dt, tt in (("f16", F16, torch.float16), ("bf16", BF16, torch.bfloat16)):
    xs = np.concatenate([x, np.array([65504, 65519, 65520, 1e-8, 6e-8, 3e-5, -0.0, np.inf, -np.inf, 1e38], np.float32)])
    h = np.empty(xs.size, np.uint16)
    ops["cast"](ptr(h), dt, ptr(xs), F32, xs.size)
    want = torch.from_numpy(xs).to(tt).view(torch.int16).numpy().view(np.uint16)
    check(f"cast f32->{name} bits", h, want, 0)
    back = np.empty(xs.size, np.float32)
    ops["cast"](ptr(back), F32, ptr(h), dt, xs.size)
    check(f"cast {name}->f32", back[np.isfinite(back)], torch.from_numpy(xs).to(tt).float().numpy()[np.isfinite(back)], 0)
    d64 = xs.astype(np.float64); h2 = np.empty(xs.size, np.uint16)
    ops["cast"](ptr(h2), dt, ptr(d64), F64, xs.size)
    check(f"cast f64->{name} bits", h2, want, 0)
for (src_dt, dst_dt) in ((F32, I32), (F32, I64), (F64, I32), (I32, F32), (I64, F64), (U8, F32), (F32, F64), (F64, F32), (I32, I64)):
    src = (np.random.randn(1000) * 100).astype(NP[src_dt]) if src_dt not in (U8,) else np.random.randint(0, 256, 1000).astype(np.uint8)
    dst = np.empty(1000, NP[dst_dt])
    ops["cast"](ptr(dst), dst_dt, ptr(src), src_dt, 1000)
    want = torch.from_numpy(src).to({F32: torch.float32, F64: torch.float64, I32: torch.int32, I64: torch.int64, U8: torch.uint8}[dst_dt]).numpy()
    check(f"cast {src_dt}->{dst_dt}", dst, want, 0)
for dt in (F32, F64, I32, I64):
    T = NP[dt]
    a = (np.random.randn(70001) * 10).astype(T); b = (np.random.randn(70001) * 10).astype(T)
    o = np.empty_like(a)
    ops["add"](ptr(o), ptr(a), ptr(b), a.size, dt); check(f"add {dt}", o, a + b, 0)
    s = np.empty(1, T); ops["sum"](ptr(s), ptr(a), a.size, dt)
    check(f"sum {dt}", s, [a.astype(np.float64).sum()], 1e-6 if dt == F32 else 1e-12)
    f = np.empty(1001, T); ops["fill"](ptr(f), 1001, dt, 2.5); check(f"fill {dt}", f, np.full(1001, T(2.5)), 0)
    if dt in (F32, F64):
        y = b.copy(); ops["axpby"](ptr(y), ptr(a), 0.5, -2.0, a.size, dt); check(f"axpby {dt}", y, 0.5 * a.astype(np.float64) - 2.0 * b, tol(dt))
        r = np.empty_like(a); ops["relu_forward"](ptr(r), ptr(a), a.size, dt); check(f"relu {dt}", r, np.maximum(a, 0), 0)
        g = np.empty_like(a); ops["relu_backward"](ptr(g), ptr(b), ptr(r), a.size, dt); check(f"relu bwd {dt}", g, np.where(r > 0, b, 0), 0)

# memory
stats = MemStats(); ops["memory_stats"](ref(stats)); before = stats.allocated
pp = C.c_void_p(); ops["alloc"](1000, C.byref(pp)); assert pp.value % 64 == 0
ops["memory_stats"](ref(stats)); check("alloc counted", [stats.allocated - before], [1000], 0)
src = np.arange(250, dtype=np.float32); ops["copy_from_host"](pp, ptr(src), 1000)
rd = C.c_void_p(); ops["read_begin"](pp, 1000, C.byref(rd)); ops["fill"](pp, 250, F32, 0.0)
dst = np.empty(250, np.float32); ops["read_finish"](rd, ptr(dst)); check("read snapshot", dst, src, 0)
ops["dealloc"](pp); ops["memory_stats"](ref(stats)); check("free counted", [stats.allocated], [before], 0)
hits = stats.cache_hits
pp2 = C.c_void_p(); ops["alloc"](1000, C.byref(pp2)); ops["memory_stats"](ref(stats))
check("freed block reused from the cache", [stats.cache_hits - hits, pp2.value == pp.value], [1, 1], 0)
ops["dealloc"](pp2); ops["empty_cache"](); ops["memory_stats"](ref(stats))
check("empty_cache releases", [stats.reserved], [stats.allocated], 0)
try:
    ops["conv2d_forward"](ref(ConvDesc(1, 1, 4, 4, 1, 3, 3, 1, 1, 0, 0, 1, 1, 1, 2, 2, F32, 1)), None, None, None, None)
    failures.append("NHWC accepted")
except CrbError as e:
    print("ok   NHWC rejected:", e)

print("\n%d failures" % len(failures))
for f in failures:
    print("  ", f)
sys.exit(1 if failures else 0)
