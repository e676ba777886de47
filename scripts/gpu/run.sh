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
node node_modules/ava/entrypoints/cli.mjs --timeout=10m dist/test/ops.test.js dist/test/cuda-gemm.test.js dist/test/model-golden.test.js 2>&1 | tee "$work/tests.log"
tests_rc=${PIPESTATUS[0]}

node bin/linkbert.js bench kernels --device cuda --json > "$work/bench.json" 2> "$work/bench.err"
bench_rc=$?
cat "$work/bench.err" >&2

mkdir -p bench/results
result="bench/results/$date-$slug.json"
node - "$work/bench.json" "$result" "$commit" "$gpu" "$tests_rc" "$bench_rc" <<'JS'
const fs = require('fs');
const [benchPath, out, commit, gpu, testsRc, benchRc] = process.argv.slice(2);
let bench = null;
try { bench = JSON.parse(fs.readFileSync(benchPath, 'utf8')); } catch { bench = null; }
const doc = { date: new Date().toISOString(), commit, gpu, node: process.version,
  tests: { passed: testsRc === '0', exit_code: Number(testsRc) },
  bench_exit_code: Number(benchRc), bench };
fs.writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
console.log(`run: wrote ${out}`);
JS
[ -f build-cuda/resource-usage.txt ] && cp build-cuda/resource-usage.txt "bench/results/$date-$slug-resource-usage.txt"
if [ -n "${OUT:-}" ]; then
  cp "$result" "$OUT/" ; cp "$work/tests.log" "$OUT/tests.log"
  [ -f build-cuda/resource-usage.txt ] && cp build-cuda/resource-usage.txt "$OUT/resource-usage.txt"
fi
[ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ]
