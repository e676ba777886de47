#!/usr/bin/env python3
"""GEMM peer for `linkbert bench kernels --peer torch`: times fp32 GEMMs with OpenBLAS and torch.

Batch mode prints one JSON document: {"threads", "python", "peers": [{"name", "blas", "results": [{M, N, K,
trans_a, trans_b, beta, peer_beta, median_ms, min_ms, reps, gflops}]}], "skipped": [reason, ...]}.
Shapes come from --shapes (a JSON list of {M, N, K, trans_a, trans_b, beta}) or stdin ("-"), else the BERT
training shapes below.

--serve: for interleaving with our own timings shape by shape (a loaded machine drifts over minutes).
Prints one header line {"ready": true, "threads", "python", "peers": [{"name", "blas"}], "skipped"}, then
reads one shape (JSON) per stdin line and answers one line {"results": [{"name", "blas", ...timing}]}.

Peers, each skipped with a reason when absent:
  openblas  numpy.matmul on the OpenBLAS of the numpy wheel (transposes passed as flags, no copies;
            always beta = 0, see below)
  torch     torch.mm / torch.addmm with whatever BLAS torch links (Debian's python3-torch may link the
            reference BLAS: its `blas` field says so; compare against the openblas peer). Dropped after
            the first shape that takes over 5 s.
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


def result(s, med, mn, n, **extra):
    flops = 2.0 * s["M"] * s["N"] * s["K"]
    return dict(s, median_ms=med * 1e3, min_ms=mn * 1e3, reps=n, gflops=flops / med / 1e9, **extra)


class OpenBLASPeer:
    name = "openblas"

    def __init__(self, np):
        self.np = np
        blas = "numpy"
        try:
            info = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
            blas = "%s %s" % (info.get("name", "?"), info.get("version", ""))
        except Exception:
            pass
        self.blas = "numpy.matmul (%s)" % blas.strip()
        self.slow = False

    def time(self, s, reps, min_time):
        np = self.np
        rng = np.random.default_rng(0)
        M, N, K = s["M"], s["N"], s["K"]
        a = rng.standard_normal((K, M) if s["trans_a"] else (M, K), dtype=np.float32)
        b = rng.standard_normal((N, K) if s["trans_b"] else (K, N), dtype=np.float32)
        c = np.empty((M, N), dtype=np.float32)
        # numpy hands the transposed views to cblas_sgemm as trans flags (no copies). It cannot accumulate,
        # so this peer always runs beta = 0: on the beta = 1 (dW +=) shapes it does slightly less work than
        # ours. (scipy.linalg.blas.sgemm can accumulate, but its bundled OpenBLAS measured up to 6x slower
        # than numpy's on these shapes, which would flatter us.)
        A = a.T if s["trans_a"] else a
        B = b.T if s["trans_b"] else b
        med, mn, n = bench(lambda: np.matmul(A, B, out=c), reps, min_time)
        return result(s, med, mn, n, peer_beta=0.0)


class TorchPeer:
    name = "torch"

    def __init__(self, torch, threads):
        self.torch = torch
        torch.set_num_threads(threads)
        self.blas = "torch %s" % torch.__version__
        for part in torch.__config__.show().replace(",", "\n").splitlines():
            if "BLAS_INFO" in part:
                self.blas += " " + part.strip().replace("- Build settings: ", "")
        self.slow = False

    def time(self, s, reps, min_time):
        torch = self.torch
        g = torch.Generator().manual_seed(0)
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
        med, mn, n = bench(fn, reps, min_time)
        if med > 5.0:
            self.slow = True  # a reference BLAS: one shape tells enough
        return result(s, med, mn, n, peer_beta=beta)


def load_peers(want, threads, skipped):
    peers = []
    if "openblas" in want:
        try:
            import numpy as np

            p = OpenBLASPeer(np)
            if "openblas" not in p.blas.lower():
                skipped.append("openblas: numpy does not use OpenBLAS here (%s)" % p.blas)
            peers.append(p)
        except ImportError:
            skipped.append("openblas: numpy is not installed for %s" % sys.executable)
    if "torch" in want:
        try:
            import torch

            peers.append(TorchPeer(torch, threads))
        except ImportError:
            skipped.append("torch: not installed for %s" % sys.executable)
    return peers


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--shapes", help="JSON list of shapes, or - for stdin")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.3, help="keep timing each shape until this many seconds")
    ap.add_argument("--peers", default="openblas,torch")
    ap.add_argument("--serve", action="store_true", help="answer one shape per stdin line (see above)")
    args = ap.parse_args()
    # Before numpy/torch load OpenBLAS or OpenMP.
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        os.environ.pop(k, None)
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(args.threads)
    skipped = []
    peers = load_peers(set(args.peers.split(",")), args.threads, skipped)
    head = dict(threads=args.threads, python=sys.executable)

    if args.serve:
        print(json.dumps(dict(head, ready=True, peers=[dict(name=p.name, blas=p.blas) for p in peers], skipped=skipped)), flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            s = json.loads(line)
            out = []
            for p in peers:
                if p.slow:
                    continue
                out.append(dict(p.time(s, args.reps, args.min_time), name=p.name, blas=p.blas))
            print(json.dumps(dict(results=out)), flush=True)
        return

    if args.shapes == "-":
        shapes = json.load(sys.stdin)
    elif args.shapes:
        shapes = json.loads(args.shapes)
    else:
        shapes = default_shapes()
    out = []
    for p in peers:
        results = []
        for s in shapes:
            if p.slow:
                skipped.append("%s: stopped after a shape took over 5 s (%s is not an optimised BLAS)" % (p.name, p.blas))
                break
            results.append(p.time(s, args.reps, args.min_time))
        out.append(dict(name=p.name, blas=p.blas, results=results))
    json.dump(dict(head, peers=out, skipped=skipped), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
