# lib.sh: sourced by the scripts that run on the GPU machine (ab.sh, ab-addon.sh) from the repository
# root: unpacks node (once) and the payload (when the addon is not there yet) that pack.sh made, puts node
# on PATH, and sets work (scratch folder) and out ($OUT, or work).
work=.gpu/run
mkdir -p "$work/bin"
[ -x "$work/bin/node" ] || { xz -dc .gpu/node.xz > "$work/bin/node" && chmod +x "$work/bin/node"; }
export PATH="$PWD/$work/bin:$PATH"
[ -f build-cuda/Release/linkbert_cuda.node ] || xz -dc .gpu/payload.tar.xz | tar -xf -
out=${OUT:-$work}
