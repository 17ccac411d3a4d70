#!/usr/bin/env bash
# Download the GPU kit's wheels (tools/gpu_kit/packages.txt) for the GPU machine's Python, here
# where the package index is reachable. The folder is git-ignored and travels with the working
# tree through the device tool's `carry` (64 MiB limit for everything carried).
#
#   bash tools/gpu_kit/prepare_wheels.sh      # for Python 3.12 and torch 2.11, into .gpu_wheels
#   bash tools/gpu_kit/prepare_wheels.sh --python-version 3.11 --torch 2.13 --dest /tmp/w
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY_VERSION=3.12
TORCH_VERSION=2.11
DEST="$ROOT/.gpu_wheels"
LIMIT_MIB=60
while [[ $# -gt 0 ]]; do
    case "$1" in
        --python-version) PY_VERSION="$2"; shift 2 ;;
        --torch) TORCH_VERSION="$2"; shift 2 ;;
        --dest) DEST="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
# torchvision 0.N pairs with torch 2.(N-15): 0.26 <-> 2.11, 0.29 <-> 2.14.
TORCH_MINOR="${TORCH_VERSION#2.}"; TORCH_MINOR="${TORCH_MINOR%%.*}"
TORCHVISION="torchvision==0.$((TORCH_MINOR + 15)).*"

mkdir -p "$DEST"
rm -f "$DEST"/*.whl
requirements=()
while read -r spec _; do
    [[ -z "$spec" || "$spec" == \#* ]] && continue
    [[ "$spec" == torchvision ]] && spec="$TORCHVISION"
    requirements+=("$spec")
done < "$ROOT/tools/gpu_kit/packages.txt"
echo "[prepare_wheels] ${#requirements[@]} wheels, Python $PY_VERSION, torch $TORCH_VERSION: $DEST"
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version "$PY_VERSION" --platform manylinux_2_28_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_27_x86_64 --platform any \
    --dest "$DEST" "${requirements[@]}" 2>&1 | grep -v '^WARNING: Location' || true
count=$(ls "$DEST"/*.whl | wc -l)
size_mib=$(( $(du -sb "$DEST" | cut -f1) / 1048576 ))
if [[ "$count" -ne "${#requirements[@]}" ]]; then
    echo "[prepare_wheels] got $count wheels for ${#requirements[@]} requirements" >&2; exit 1
fi
if [[ "$size_mib" -gt "$LIMIT_MIB" ]]; then
    echo "[prepare_wheels] $size_mib MiB is over the $LIMIT_MIB MiB budget" >&2; exit 1
fi
printf '%s\n' "python=$PY_VERSION torch=$TORCH_VERSION" > "$DEST/KIT_TARGET"
echo "[prepare_wheels] $count wheels, $size_mib MiB"
