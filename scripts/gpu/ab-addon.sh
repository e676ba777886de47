#!/usr/bin/env bash
# ab-addon.sh NAME...: on the GPU machine, after pack.sh (like run.sh), compares builds of the CUDA addon
# on one warm machine: .gpu/ab/NAME.node or NAME.node.xz for each NAME (put there after pack.sh, which
# clears .gpu/; xz it, an addon is ~46 MB and .gpu/ travels within 64 MiB), e.g. a build of the base
# commit; "head" means the packed build. Rounds alternate the builds (A B A B ...) so drift hits both:
# `bench kernels --device cuda --only $AB_OPS` (default attention,dropout) and bf16 `bench step` for mini
# and base. Writes ab-addon.json ({commit, rounds: [{name, kernels, step}]}) and a summary into $OUT (or .gpu/run).
set -uo pipefail
cd "$(dirname "$0")/../.."
. scripts/gpu/lib.sh
addon=build-cuda/Release/linkbert_cuda.node
mkdir -p .gpu/ab
[ -f .gpu/ab/head.node ] || cp "$addon" .gpu/ab/head.node
for f in .gpu/ab/*.node.xz; do [ -f "$f" ] && [ ! -f "${f%.xz}" ] && xz -dc "$f" > "${f%.xz}"; done
export LINKBERT_ADDON=cuda
rounds=${AB_ROUNDS:-2}
: > "$work/ab.jsonl"
for ((r = 0; r < rounds; r++)); do
  for name in "$@"; do
    [ -f ".gpu/ab/$name.node" ] || { echo "ab-addon: .gpu/ab/$name.node missing" >&2; exit 2; }
    cp ".gpu/ab/$name.node" "$addon"
    timeout 120 node bin/linkbert.js bench kernels --device cuda --only "${AB_OPS:-attention,dropout}" --json > "$work/ab-k.json" 2>/dev/null
    : > "$work/ab-s.jsonl"
    for cfg in mini base; do
      timeout 60 node bin/linkbert.js bench step --device cuda --config $cfg --precision bf16 --repeats 10 --warmup 2 --json >> "$work/ab-s.jsonl" 2>/dev/null
    done
    node -e '
      const fs = require("fs");
      const [kp, sp, name] = process.argv.slice(1);
      let k = { results: [] };
      try { k = JSON.parse(fs.readFileSync(kp, "utf8")); } catch {}
      const step = fs.readFileSync(sp, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)).map((s) => ({ config: s.config, median_ms: s.median_ms }));
      const kernels = k.results.map((x) => ({ op: x.op, pass: x.pass, shape: x.shape, median_ms: x.median_ms }));
      console.log(JSON.stringify({ name, kernels, step }));
    ' "$work/ab-k.json" "$work/ab-s.jsonl" "$name" >> "$work/ab.jsonl"
    echo "ab-addon: round $r $name done"
  done
done
node -e '
  const fs = require("fs");
  const [lp, outp, commit] = process.argv.slice(1);
  const rounds = fs.readFileSync(lp, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  fs.writeFileSync(outp, JSON.stringify({ commit, rounds }, null, 1));
  const names = [...new Set(rounds.map((r) => r.name))];
  const key = (x) => `${x.op} ${x.pass} ${Object.entries(x.shape).map(([a, b]) => a + "=" + b).join(" ")}`;
  const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
  const rows = new Map();
  for (const r of rounds) {
    for (const x of r.kernels) { const k = key(x); if (!rows.has(k)) rows.set(k, {}); (rows.get(k)[r.name] ??= []).push(x.median_ms); }
    for (const s of r.step) { const k = `step ${s.config} bf16`; if (!rows.has(k)) rows.set(k, {}); (rows.get(k)[r.name] ??= []).push(s.median_ms); }
  }
  for (const [k, v] of rows) {
    const ms = names.map((n) => (v[n] ? med(v[n]) : NaN));
    console.log(k.padEnd(80), names.map((n, i) => `${n} ${ms[i].toFixed(4)} ms`).join("  "), names.length > 1 ? `  ${names[1]}/${names[0]} ${(ms[1] / ms[0]).toFixed(3)}` : "");
  }' "$work/ab.jsonl" "$out/ab-addon.json" "$(cat .gpu/commit)" | tee "$out/ab-addon.txt"
