#!/usr/bin/env bash
# run.sh: runs on the GPU machine (no Node, no network), from the repository root, after pack.sh:
#   unpacks node and the payload, prints the device, runs the CUDA op tests, the Hopper GEMM test and the model golden test
#   (ava, LINKBERT_TEST_DEVICE=cuda), then `bench kernels --device cuda --json`, and writes
#   bench/results/<date>-<gpu>.json (benchmark + commit packed + test outcome) and copies the
#   resource-usage report next to it. With $OUT set (the device tool), copies of the results go there.
# Exit status: non-zero when the tests or the benchmark failed (the results file is written anyway).
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -f .gpu/node.xz ] && [ -f .gpu/payload.tar.xz ] || { echo "run: .gpu/ missing: run scripts/gpu/pack.sh first" >&2; exit 2; }
work=.gpu/run
mkdir -p "$work/bin"
xz -dc .gpu/node.xz > "$work/bin/node" && chmod +x "$work/bin/node"
export PATH="$PWD/$work/bin:$PATH"
xz -dc .gpu/payload.tar.xz | tar -xf -
commit=$(cat .gpu/commit)

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
[ -n "$gpu" ] || gpu=unknown-gpu
slug=$(echo "$gpu" | tr 'A-Z' 'a-z' | sed 's/nvidia//; s/[^a-z0-9]\+/-/g; s/^-//; s/-$//')
date=$(date -u +%Y-%m-%d)
echo "run: $gpu, node $(node --version), commit $commit"
nvidia-smi 2>/dev/null | head -15
node -e "const a=require('./build-cuda/Release/linkbert_cuda.node'); console.log(JSON.stringify(a.info()))" || true

export LINKBERT_ADDON=cuda LINKBERT_TEST_DEVICE=cuda
# Each step has its own time cap (seconds; a hung kernel must not eat the whole lease) and its log goes
# straight to $OUT when set, so a step killed at its cap still leaves what it printed.
logdir=${OUT:-$work}
ava=(node node_modules/ava/entrypoints/cli.mjs --timeout=3m --verbose)
# 1. the Hopper GEMM (wgmma) shapes first: alone, so a hang there cannot hide the op table's results
timeout "${T_GEMM:-90}" "${ava[@]}" dist/test/cuda-gemm.test.js > "$logdir/tests-gemm.log" 2>&1
gemm_rc=$?
# 2. every CUDA op against ref, forward and backward, and the golden model test
timeout "${T_OPS:-200}" "${ava[@]}" dist/test/ops.test.js dist/test/model-golden.test.js > "$logdir/tests.log" 2>&1
ops_rc=$?
tail -n 5 "$logdir/tests-gemm.log" "$logdir/tests.log"
tests_rc=$(( gemm_rc != 0 || ops_rc != 0 ))
cp "$logdir/tests-gemm.log" "$logdir/tests.log" "$work/" 2>/dev/null

# 3. the kernel benchmark (auto GEMM path), then PyTorch on the same rows (scripts/gpu/torch_peer.py)
timeout "${T_BENCH:-150}" node bin/linkbert.js bench kernels --device cuda --json > "$work/bench.json" 2> "$work/bench.err"
bench_rc=$?
cat "$work/bench.err" >&2
if [ "$bench_rc" = 0 ] && command -v python3 >/dev/null; then
  timeout "${T_PEER:-90}" python3 scripts/gpu/torch_peer.py "$work/bench.json" "$work/bench-torch.json" > "$logdir/torch-peer.log" 2>&1 \
    && mv "$work/bench-torch.json" "$work/bench.json"
  tail -n 3 "$logdir/torch-peer.log"
fi
# 4. the GEMMs again on the mma.sync path, for the wgmma-vs-mma comparison on the same machine
LINKBERT_CUDA_GEMM=mma timeout "${T_MMA:-60}" node bin/linkbert.js bench kernels --device cuda --only matmul --min-time 0.3 --json > "$logdir/bench-mma.json" 2> "$work/bench-mma.err"
mma_rc=$?
[ "$mma_rc" = 0 ] || { echo "run: mma bench exit $mma_rc" >&2; tail -n 5 "$work/bench-mma.err" >&2; }
# 5. whole pretraining steps (forward, backward, AdamW) against the same step in PyTorch on this GPU
: > "$work/step.jsonl"
for cfg in "mini bf16" "base bf16" "mini fp32"; do
  set -- $cfg
  timeout "${T_STEP:-90}" node bin/linkbert.js bench step --device cuda --config "$1" --precision "$2" --repeats 10 --warmup 2 --peer torch --json >> "$work/step.jsonl" 2>> "$work/bench.err" \
    || echo "run: bench step $1 $2 failed" >&2
done
cat "$work/step.jsonl"
# 6. the 4096^3 bf16 GEMMs back to back (L2 warm, no flush), then one launch under Nsight Compute (T_NCU=0 skips)
for l in NT NN TN; do timeout 30 node scripts/gpu/gemm_once.mjs 4096 4096 4096 $l 20 | tee -a "$logdir/torch-peer.log"; done
# Nsight Compute: one launch of it profiled
if [ "${T_NCU:-90}" != 0 ] && command -v ncu >/dev/null; then
  timeout "${T_NCU:-90}" ncu --target-processes all -k regex:matmul_wgmma --launch-skip 1 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis \
    --section LaunchStats --section Occupancy node scripts/gpu/gemm_once.mjs 4096 4096 4096 NT 3 > "$logdir/ncu.txt" 2>&1
  echo "run: ncu exit $?"; grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|L2 Cache Throughput|Issue Slots Busy|No Eligible" "$logdir/ncu.txt" | head -12
fi

mkdir -p bench/results
result="bench/results/$date-$slug.json"
node - "$work/bench.json" "$result" "$commit" "$gpu" "$tests_rc" "$bench_rc" "$work/step.jsonl" <<'JS'
const fs = require('fs');
const [benchPath, out, commit, gpu, testsRc, benchRc, stepPath] = process.argv.slice(2);
let bench = null;
try { bench = JSON.parse(fs.readFileSync(benchPath, 'utf8')); } catch { bench = null; }
let step = [];
try { step = fs.readFileSync(stepPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)); } catch { step = []; }
const doc = { date: new Date().toISOString(), commit, gpu, node: process.version,
  tests: { passed: testsRc === '0', exit_code: Number(testsRc), log: 'tests.log, tests-gemm.log: commit them as <date>-<gpu>-tests.txt' },
  bench_exit_code: Number(benchRc), step, bench };
fs.writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
console.log(`run: wrote ${out}`);
JS
[ -f build-cuda/resource-usage.txt ] && cp build-cuda/resource-usage.txt "bench/results/$date-$slug-resource-usage.txt"
if [ -n "${OUT:-}" ]; then
  cp "$result" "$OUT/"
  [ -f build-cuda/resource-usage.txt ] && cp build-cuda/resource-usage.txt "$OUT/resource-usage.txt"
fi
[ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ]
