#!/usr/bin/env python3
"""CUDA peer for `linkbert bench kernels --device cuda --json`: times the same rows with PyTorch on the GPU.

Usage: torch_peer.py BENCH_JSON OUT_JSON
Reads our benchmark's results, runs each row it knows (matmul, attention, layernorm, gelu, softmax_xent,
adamw, bias_backward, copy) with torch (cuBLAS / cuDNN / torch's own kernels), and writes the same document
with `torch_ms` and `vs_torch` (torch median / ours: above 1 means ours is faster) on each matched row, plus
summary.vs_torch_geomean per op. Same timing rule as ours: the L2 is flushed (256 MB fill) before each run,
one warm-up, median of at least 3 runs and until 0.2 s. f32 matmuls run with TF32 off, as ours do.
Both sides are timed with CUDA events around one run (linkbert: cudaTimerStart/Stop in the addon).
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
CUDA = torch.cuda.is_available()
dev = torch.device("cuda" if CUDA else "cpu")  # cpu: only to smoke-test this script where there is no GPU
flush_buf = torch.empty(64 << 20, dtype=torch.float32, device=dev)


def timed(fn, min_time=0.2):
    fn()
    if CUDA:
        torch.cuda.synchronize()
    times = []
    total = 0.0
    while len(times) < 3 or (total < min_time and len(times) < 50):
        flush_buf.zero_()
        if CUDA:
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            ms = s.elapsed_time(e)
        else:
            t0 = time.perf_counter()
            fn()
            ms = (time.perf_counter() - t0) * 1e3
        times.append(ms)
        total += ms / 1e3
    times.sort()
    return times[len(times) // 2]


def rnd(*shape, dtype=torch.float32, scale=1.0):
    return (torch.rand(*shape, device=dev, dtype=torch.float32) * 2 - 1).mul_(scale).to(dtype)


def matmul_fn(sh):
    dt = torch.bfloat16 if sh.get("dtype") == "bf16" else torch.float32
    M, N, K = sh["M"], sh["N"], sh["K"]
    a = rnd(*((K, M) if sh["trans_a"] else (M, K)), dtype=dt)
    b = rnd(*((N, K) if sh["trans_b"] else (K, N)), dtype=dt, scale=0.05)
    c = torch.zeros(M, N, device=dev, dtype=dt)
    A = a.t() if sh["trans_a"] else a
    B = b.t() if sh["trans_b"] else b
    ep = sh.get("epilogue")
    if ep == "bias":
        bias = rnd(N, dtype=dt)
        return lambda: torch.addmm(bias, A, B, out=c)
    if ep == "bias_gelu":
        bias = rnd(N, dtype=dt)
        pre = torch.empty(M, N, device=dev, dtype=dt)
        return lambda: (torch.addmm(bias, A, B, out=pre), F.gelu(pre))
    if sh.get("beta", 0):
        return lambda: torch.addmm(c, A, B, beta=float(sh["beta"]), out=c)
    return lambda: torch.mm(A, B, out=c)


def attention_fn(sh, backward):
    B, T, NH, D = sh["B"], sh["T"], sh["NH"], sh["D"]
    dt = torch.bfloat16 if sh.get("dtype") == "bf16" else torch.float32
    q, k, v = (rnd(B, NH, T, D, dtype=dt).requires_grad_(backward) for _ in range(3))
    mask = torch.ones(B, 1, 1, T, device=dev, dtype=torch.bool)
    p = float(sh.get("dropout_p", 0.0))
    if not backward:
        return lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
    dout = rnd(B, NH, T, D, dtype=dt)
    return lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)


def layernorm_fn(sh, backward):
    rows, cols = sh["rows"], sh["cols"]
    x, r = rnd(rows, cols), rnd(rows, cols)
    g, b = torch.ones(cols, device=dev), torch.zeros(cols, device=dev)
    if not backward:
        return lambda: F.layer_norm(x + r, (cols,), g, b, 1e-12)
    xg, gg, bg = x.clone().requires_grad_(True), g.clone().requires_grad_(True), b.clone().requires_grad_(True)
    out = F.layer_norm(xg, (cols,), gg, bg, 1e-12)
    dout = rnd(rows, cols)
    return lambda: torch.autograd.grad(out, (xg, gg, bg), dout, retain_graph=True)


def gelu_fn(sh, backward):
    x = rnd(sh["n"], scale=3)
    if not backward:
        return lambda: F.gelu(x)
    xg = x.clone().requires_grad_(True)
    out = F.gelu(xg)
    dout = rnd(sh["n"])
    return lambda: torch.autograd.grad(out, xg, dout, retain_graph=True)


def xent_fn(sh):
    N, V = sh["N"], sh["V"]
    logits = rnd(N, V, scale=4).requires_grad_(True)
    labels = (torch.arange(N, device=dev) * 7919) % V
    def run():
        loss = F.cross_entropy(logits, labels)
        return torch.autograd.grad(loss, logits)
    return run


def adamw_fn(sh):
    n = sh["n"]
    p = torch.nn.Parameter(rnd(n))
    p.grad = rnd(n, scale=0.01)
    opt = torch.optim.AdamW([p], lr=1e-4, weight_decay=0.01, betas=(0.9, 0.98), **({"fused": True} if CUDA else {}))
    return opt.step


def peer_fn(r):
    op, sh, back = r["op"], r["shape"], r.get("pass") == "backward"
    if op == "matmul":
        return matmul_fn(sh)
    if op == "attention":
        return attention_fn(sh, back)
    if op == "layernorm":
        return layernorm_fn(sh, back)
    if op == "gelu":
        return gelu_fn(sh, back)
    if op == "softmax_xent":
        return xent_fn(sh)
    if op == "adamw":
        return adamw_fn(sh)
    if op == "bias_backward":
        d = rnd(sh["M"], sh["N"])
        return lambda: d.sum(0)
    if op == "copy":  # f32 -> f32, or a cast (src/dst f32 or bf16)
        dt = {"f32": torch.float32, "bf16": torch.bfloat16}
        src = rnd(sh["n"], dtype=dt[sh.get("src", "f32")])
        dst = torch.empty(sh["n"], device=dev, dtype=dt[sh.get("dst", "f32")])
        return lambda: dst.copy_(src)
    if op == "scale":  # in place
        x = rnd(sh["n"])
        return lambda: x.mul_(1.0)
    if op == "fill":
        x = rnd(sh["n"])
        return lambda: x.zero_()
    return None


def main():
    doc = json.load(open(sys.argv[1]))
    bench = doc["bench"] if isinstance(doc.get("bench"), dict) else doc  # run.sh wraps the bench document
    per_op = {}
    for r in bench.get("results", []):
        if r.get("error") or "median_ms" not in r:
            continue
        try:
            fn = peer_fn(r)
            if fn is None:
                continue
            ms = timed(fn)
        except Exception as e:  # a row torch cannot run is noted, never fatal
            r["torch_error"] = str(e)[:200]
            continue
        finally:
            if CUDA:
                torch.cuda.empty_cache()
        r["torch_ms"] = ms
        r["vs_torch"] = ms / r["median_ms"]
        sh = r["shape"]
        cast = "_%s_to_%s" % (sh["src"], sh["dst"]) if r["op"] == "copy" and sh.get("src", "f32") != sh.get("dst", "f32") else ""
        key = r["op"] + cast + ("_bf16" if sh.get("dtype") == "bf16" else "") + ("_backward" if r.get("pass") == "backward" else "")
        per_op.setdefault(key, []).append(r["vs_torch"])
        print("%-22s %-60s ours %9.4f ms  torch %9.4f ms  x%.2f" % (key, json.dumps({k: v for k, v in r["shape"].items() if k not in ("config",)})[:60], r["median_ms"], ms, r["vs_torch"]), flush=True)
    bench.setdefault("summary", {})["vs_torch_geomean"] = {k: math.exp(sum(map(math.log, v)) / len(v)) for k, v in per_op.items()}
    bench["summary"]["torch"] = "%s, %s" % (torch.__version__, torch.cuda.get_device_name() if CUDA else "cpu")
    json.dump(doc, open(sys.argv[2], "w"), indent=2)


if __name__ == "__main__":
    main()
