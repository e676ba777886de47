#!/usr/bin/env bash
# ab.sh VAR VALUE...: on the GPU machine, after pack.sh (like run.sh), compares settings of one environment
# knob (e.g. LINKBERT_SM90_STAGES 7 3, LINKBERT_CUDA_GEMM wgmma mma) on one warm machine: for each value,
# the Hopper GEMM tests, the bf16 GEMM rows of `bench kernels` and bf16 `bench step` for mini and base,
# interleaved value by value. Writes ab-<VAR>.json (and tests-ab.log) into $OUT (or .gpu/run).
set -uo pipefail
cd "$(dirname "$0")/../.."
var=$1; shift
. scripts/gpu/lib.sh
export LINKBERT_ADDON=cuda LINKBERT_TEST_DEVICE=cuda
echo '{"var": "'"$var"'", "commit": "'"$(cat .gpu/commit)"'", "runs": [' > "$out/ab-$var.json"
first=1
for v in "$@"; do
  export "$var=$v"
  timeout 90 node node_modules/ava/entrypoints/cli.mjs --timeout=2m dist/test/cuda-gemm.test.js >> "$out/tests-ab.log" 2>&1
  t=$?
  echo "ab: $var=$v gemm tests exit $t"
  timeout 90 node bin/linkbert.js bench kernels --device cuda --only matmul --min-time 0.3 --json > "$work/ab-k.json" 2>/dev/null
  for cfg in mini base; do
    timeout 60 node bin/linkbert.js bench step --device cuda --config $cfg --precision bf16 --repeats 10 --warmup 2 --json >> "$work/ab-s.jsonl" 2>/dev/null
  done
  [ $first = 1 ] || echo ',' >> "$out/ab-$var.json"; first=0
  node -e '
    const fs = require("fs");
    const k = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const steps = fs.readFileSync(process.argv[2], "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const rows = k.results.filter((r) => r.shape.dtype === "bf16").map((r) => ({ shape: r.shape, path: r.path, median_ms: r.median_ms, tflops: r.gflops / 1000 }));
    process.stdout.write(JSON.stringify({ value: process.argv[3], gemm_tests_exit: Number(process.argv[4]), gemm_bf16: rows, step: steps.map((s) => ({ config: s.config, median_ms: s.median_ms })) }));
  ' "$work/ab-k.json" "$work/ab-s.jsonl" "$v" "$t" >> "$out/ab-$var.json"
  tail -n 2 "$work/ab-s.jsonl"; rm -f "$work/ab-s.jsonl"
done
echo ']}' >> "$out/ab-$var.json"
node -e '
  const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  for (const r of d.runs) {
    const g = Math.exp(r.gemm_bf16.reduce((a, x) => a + Math.log(x.tflops), 0) / r.gemm_bf16.length);
    console.log(`${d.var}=${r.value}: gemm tests exit ${r.gemm_tests_exit}, bf16 GEMM geomean ${g.toFixed(1)} TFLOP/s, steps ${r.step.map((s) => s.config + " " + s.median_ms.toFixed(2) + " ms").join(", ")}`);
  }' "$out/ab-$var.json"
