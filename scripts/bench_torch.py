#!/usr/bin/env python3
"""GEMM peer for `linkbert bench kernels --peer torch`: times fp32 GEMMs with OpenBLAS and torch.

Prints JSON: {"threads": n, "peers": [{"name", "blas", "results": [{M, N, K, trans_a, trans_b, beta,
median_ms, min_ms, reps, gflops}]}], "skipped": [reason, ...]}. Shapes come from --shapes (a JSON list of
{M, N, K, trans_a, trans_b, beta}) or stdin ("-"), else the BERT training shapes below.

Peers, each skipped with a reason when absent:
  openblas  numpy.matmul on the OpenBLAS of the numpy wheel (transposes passed as flags, no copies;
            always beta = 0, see below)
  torch     torch.mm / torch.addmm with whatever BLAS torch links (Debian's python3-torch may link the
            reference BLAS: its `blas` field says so; compare against the openblas peer)
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed from this process's environment before OpenBLAS loads,
so it picks its own kernels for this CPU (some CI images pin them for reproducibility, not speed).
"""
import argparse
import json
import os
import sys
import time


def default_shapes():
    shapes = []
    tokens = 4096  # 32 sequences x 128 tokens
    for hidden, inter in ((256, 1024), (768, 3072)):
        for fan_in, fan_out in ((hidden, 3 * hidden), (hidden, hidden), (hidden, inter), (inter, hidden)):
            shapes.append(dict(M=tokens, N=fan_out, K=fan_in, trans_a=False, trans_b=True, beta=0.0))  # y = x W^T
            shapes.append(dict(M=tokens, N=fan_in, K=fan_out, trans_a=False, trans_b=False, beta=0.0))  # dx = dy W
            shapes.append(dict(M=fan_out, N=fan_in, K=tokens, trans_a=True, trans_b=False, beta=1.0))  # dW += dy^T x
    return shapes


def bench(fn, reps, min_time):
    fn()  # warm-up: thread start, page faults
    times = []
    start = time.perf_counter()
    while len(times) < reps or (time.perf_counter() - start < min_time and len(times) < 50):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2], times[0], len(times)


def shape_arrays(np, s):
    rng = np.random.default_rng(0)
    M, N, K = s["M"], s["N"], s["K"]
    a = rng.standard_normal((K, M) if s["trans_a"] else (M, K), dtype=np.float32)
    b = rng.standard_normal((N, K) if s["trans_b"] else (K, N), dtype=np.float32)
    c = rng.standard_normal((M, N), dtype=np.float32)
    return a, b, c


def run_openblas(shapes, reps, min_time, skipped):
    try:
        import numpy as np
    except ImportError:
        skipped.append("openblas: numpy is not installed")
        return None
    blas = "numpy"
    try:
        cfg = np.show_config(mode="dicts")
        info = cfg.get("Build Dependencies", {}).get("blas", {})
        blas = "%s %s" % (info.get("name", "?"), info.get("version", ""))
    except Exception:
        pass
    blas = "numpy.matmul (%s)" % blas
    if "openblas" not in blas.lower():
        skipped.append("openblas: numpy does not use OpenBLAS here (%s)" % blas)
    results = []
    for s in shapes:
        a, b, c = shape_arrays(np, s)
        # numpy hands the transposed views to cblas_sgemm as trans flags (no copies). It cannot accumulate,
        # so the peer always runs beta = 0: for the beta = 1 (dW +=) shapes it does slightly less work
        # than ours. (scipy.linalg.blas.sgemm can accumulate, but its bundled OpenBLAS measured up to 6x
        # slower than numpy's on these shapes, which would flatter us.)
        A = a.T if s["trans_a"] else a
        B = b.T if s["trans_b"] else b
        fn = lambda: np.matmul(A, B, out=c)
        med, mn, n = bench(fn, reps, min_time)
        flops = 2.0 * s["M"] * s["N"] * s["K"]
        results.append(dict(s, peer_beta=0.0, median_ms=med * 1e3, min_ms=mn * 1e3, reps=n, gflops=flops / med / 1e9))
    return dict(name="openblas", blas=blas, results=results)


def run_torch(shapes, reps, min_time, threads, skipped):
    try:
        import torch
    except ImportError:
        skipped.append("torch: not installed for %s" % sys.executable)
        return None
    torch.set_num_threads(threads)
    cfg = torch.__config__.show()
    blas = "torch %s" % torch.__version__
    for part in cfg.replace(",", "\n").splitlines():
        if "BLAS_INFO" in part:
            blas += " " + part.strip()
    results = []
    g = torch.Generator().manual_seed(0)
    for s in shapes:
        M, N, K = s["M"], s["N"], s["K"]
        a = torch.randn((K, M) if s["trans_a"] else (M, K), generator=g)
        b = torch.randn((N, K) if s["trans_b"] else (K, N), generator=g)
        c = torch.randn((M, N), generator=g)
        A = a.t() if s["trans_a"] else a
        B = b.t() if s["trans_b"] else b
        beta = float(s.get("beta", 0.0))
        if beta == 0.0:
            fn = lambda: torch.mm(A, B, out=c)
        else:
            fn = lambda: torch.addmm(c, A, B, beta=beta, out=c)
        # A reference BLAS is ~100x slower: one timed run tells enough.
        med, mn, n = bench(fn, reps, min_time)
        flops = 2.0 * M * N * K
        results.append(dict(s, median_ms=med * 1e3, min_ms=mn * 1e3, reps=n, gflops=flops / med / 1e9))
        if med > 5.0:
            skipped.append("torch: stopped after %dx%dx%d took %.1f s (%s is not an optimised BLAS)" % (M, N, K, med, blas))
            break
    return dict(name="torch", blas=blas, results=results)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--shapes", help="JSON list of shapes, or - for stdin")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.3, help="keep timing each shape until this many seconds")
    ap.add_argument("--peers", default="openblas,torch")
    args = ap.parse_args()
    # Before numpy/scipy/torch load OpenBLAS or OpenMP.
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        os.environ.pop(k, None)
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(args.threads)
    if args.shapes == "-":
        shapes = json.load(sys.stdin)
    elif args.shapes:
        shapes = json.loads(args.shapes)
    else:
        shapes = default_shapes()
    skipped, peers = [], []
    want = set(args.peers.split(","))
    if "openblas" in want:
        r = run_openblas(shapes, args.reps, args.min_time, skipped)
        if r:
            peers.append(r)
    if "torch" in want:
        r = run_torch(shapes, args.reps, args.min_time, args.threads, skipped)
        if r:
            peers.append(r)
    json.dump(dict(threads=args.threads, python=sys.executable, peers=peers, skipped=skipped), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
