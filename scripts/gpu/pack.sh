#!/usr/bin/env bash
# pack.sh: packs what the GPU machine needs into .gpu/ (git-excluded), for scripts/gpu/run.sh there.
#   .gpu/node.xz          this machine's node binary (the GPU machine has no Node), xz-compressed
#   .gpu/payload.tar.xz   build-cuda/Release/linkbert_cuda.node, build-cuda/resource-usage.txt, dist/,
#                         bin/, package.json and the runtime node_modules (scripts/gpu/deps.mjs)
#   .gpu/commit           git rev-parse HEAD (+ "-dirty" when the tree has uncommitted changes)
# Prerequisites: `npm run build:cuda` (or `npx cmake-js compile --out build-cuda` + `npx tsc -p .`).
# The whole of .gpu/ must stay under 64 MiB (what travels to the GPU machine); the script checks.
set -euo pipefail
cd "$(dirname "$0")/../.."
addon=build-cuda/Release/linkbert_cuda.node
[ -f "$addon" ] || { echo "pack: $addon missing: run npm run build:cuda" >&2; exit 1; }
[ -f dist/src/native.js ] || { echo "pack: dist/ missing: run npx tsc -p ." >&2; exit 1; }
rm -rf .gpu && mkdir -p .gpu
grep -qx '.gpu/' .gitignore 2>/dev/null || grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude

commit=$(git rev-parse HEAD)
[ -z "$(git status --porcelain --untracked-files=no)" ] || commit="$commit-dirty"
echo "$commit" > .gpu/commit

echo "pack: node $(node --version) -> .gpu/node.xz"
xz -T2 -6 < "$(command -v node)" > .gpu/node.xz
node --version > .gpu/node-version

node scripts/gpu/deps.mjs > .gpu/deps.txt
extra=()
[ -f build-cuda/resource-usage.txt ] && extra+=(build-cuda/resource-usage.txt)
echo "pack: $(wc -l < .gpu/deps.txt) npm packages, dist/, addon -> .gpu/payload.tar.xz"
tar -cf - "$addon" "${extra[@]}" dist bin package.json $(cat .gpu/deps.txt) | xz -T2 -6 > .gpu/payload.tar.xz

# The packed module graph must resolve without the rest of node_modules: static imports are linked
# before any code runs, so importing the entry points in a scratch copy finds a missing package.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
xz -dc .gpu/payload.tar.xz | tar -xf - -C "$tmp"
for entry in dist/src/cli/index.js dist/test/ops.test.js dist/test/cuda-gemm.test.js dist/test/model-golden.test.js; do
  [ -f "$tmp/$entry" ] || continue
  if ! err=$(cd "$tmp" && node --input-type=module -e "await import('./$entry')" 2>&1); then
    if grep -q 'ERR_MODULE_NOT_FOUND\|Cannot find package' <<<"$err"; then
      echo "pack: $entry does not resolve from the packed node_modules:" >&2
      grep -m3 'ERR_MODULE_NOT_FOUND\|Cannot find' <<<"$err" >&2
      exit 1
    fi
  fi
done

# CommonJS requires inside packages resolve only when they run: run the CLI's bench help and the Hopper GEMM
# test file (its tests skip here without a GPU, but ava loads its reporter and assertion libraries).
if ! err=$(cd "$tmp" && node bin/linkbert.js bench kernels --help 2>&1 >/dev/null && LINKBERT_ADDON=cuda node node_modules/ava/entrypoints/cli.mjs dist/test/cuda-gemm.test.js 2>&1); then
  if grep -q 'MODULE_NOT_FOUND\|Cannot find' <<<"$err"; then
    echo "pack: the packed node_modules miss a package:" >&2
    grep -m3 'MODULE_NOT_FOUND\|Cannot find' <<<"$err" >&2
    exit 1
  fi
fi

total=$(du -cb .gpu/* | tail -1 | cut -f1)
echo "pack: .gpu/ is $((total / 1048576)) MiB (limit 64), commit $commit"
[ "$total" -lt $((64 * 1048576)) ] || { echo "pack: .gpu/ exceeds 64 MiB" >&2; exit 1; }
