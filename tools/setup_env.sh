#!/usr/bin/env bash
# Create (or bring up to date) the repo-root .venv with the whole silc-seg stack.
#
#   bash tools/setup_env.sh            # idempotent; a no-op in ~1 s when nothing changed
#
# Environment knobs:
#   PYTHON=python3.11       interpreter used to create .venv (3.9-3.12)
#   MMCV_CUDA=auto|0|1      build mmcv's CUDA ops too (auto: when nvcc and a GPU are both present)
#   SILC_WHEEL_CACHE=DIR    where built mmcv wheels are kept (default ~/.cache/silc-seg/wheels)
#   TORCH_SPEC=SPEC         pip specifier of another torch (default: requirements/torch.txt), e.g.
#   TORCHVISION_SPEC=SPEC   'torch==2.5.1+cu121' with a matching torchvision; mmcv is rebuilt for it
#
# mmcv 2.1.0 (the newest mmcv that mmsegmentation 1.2.2 accepts) ships no wheels for recent torch,
# so it is built from source with its C++ ops. The built wheel is cached in a directory keyed by
# the torch version, CUDA flavour and Python tag, so a wheel built against another torch is never
# reused: a torch upgrade triggers a rebuild.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
MMCV_VERSION=2.1.0
WHEEL_CACHE="${SILC_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/silc-seg/wheels}"
STAMP="$VENV/.silc-setup-stamp"
MMCV_CUDA="${MMCV_CUDA:-auto}"

log() { printf '[setup_env] %s\n' "$*"; }
pip_install() { "$VPY" -m pip install --disable-pip-version-check -q "$@"; }
verify() {
    "$VPY" -c "import silc_seg, mmseg.models, mmpretrain.models, mmcv.ops" >/dev/null 2>&1
}

if [[ "$MMCV_CUDA" == auto ]]; then
    if command -v nvcc >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then MMCV_CUDA=1; else MMCV_CUDA=0; fi
fi

inputs_key() {
    cat requirements/*.txt setup.py tools/setup_env.sh | sha256sum | cut -c1-16
    echo "cuda=$MMCV_CUDA torch=${TORCH_SPEC:-} torchvision=${TORCHVISION_SPEC:-}"
}
KEY="$(inputs_key | tr '\n' ' ')"

if [[ -x "$VPY" && -f "$STAMP" && "$(cat "$STAMP")" == "$KEY" ]] && verify; then
    log "environment up to date ($VENV)"
    exit 0
fi

start=$SECONDS
if [[ ! -x "$VPY" ]]; then
    PY="${PYTHON:-}"
    if [[ -z "$PY" ]]; then
        for cand in python3.11 python3.12 python3.10 python3; do
            if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
        done
    fi
    "$PY" -c 'import sys; assert (3, 9) <= sys.version_info[:2] <= (3, 12), sys.version' \
        || { log "need Python 3.9-3.12, got $("$PY" --version)"; exit 1; }
    log "creating $VENV with $("$PY" --version)"
    "$PY" -m venv "$VENV"
fi

if [[ -n "${TORCH_SPEC:-}" ]]; then
    # Another torch build (e.g. another CUDA flavour): mmcv is rebuilt for it (tagged by version).
    log "installing torch from TORCH_SPEC=$TORCH_SPEC ${TORCHVISION_SPEC:+TORCHVISION_SPEC=$TORCHVISION_SPEC}"
    pip_install "$TORCH_SPEC" ${TORCHVISION_SPEC:+"$TORCHVISION_SPEC"}
else
    log "installing torch ($(grep -v '^#' requirements/torch.txt | tr '\n' ' '))"
    pip_install -r requirements/torch.txt
fi

TORCH_TAG="$("$VPY" - "$MMCV_CUDA" <<'EOF'
import sys, sysconfig, torch
cuda = torch.version.cuda if sys.argv[1] == '1' else None
flavour = f'cu{cuda.replace(".", "")}' if cuda else 'cpu'
print(f'torch{torch.__version__.split("+")[0]}-{flavour}-{sys.implementation.cache_tag}')
EOF
)"
MMCV_TAG="mmcv${MMCV_VERSION}-${TORCH_TAG}"
WHEEL_DIR="$WHEEL_CACHE/$MMCV_TAG"
INSTALLED_TAG_FILE="$VENV/.mmcv-build-tag"

if [[ "$(cat "$INSTALLED_TAG_FILE" 2>/dev/null)" != "$MMCV_TAG" ]]; then
    wheel="$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
    if [[ -z "$wheel" ]]; then
        log "building mmcv $MMCV_VERSION with ops for $TORCH_TAG (about 10 minutes on 2 cores)"
        build_dir="$(mktemp -d)"
        trap 'rm -rf "$build_dir"' EXIT
        # mmcv's setup.py imports pkg_resources APIs that setuptools>=70 no longer provides.
        pip_install "setuptools<70" wheel ninja
        "$VPY" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
            "mmcv==$MMCV_VERSION" -d "$build_dir"
        tar -xzf "$build_dir/mmcv-$MMCV_VERSION.tar.gz" -C "$build_dir"
        src="$build_dir/mmcv-$MMCV_VERSION"
        # torch>=2.14 headers need C++20; mmcv hard-codes C++17 (C++20 also builds older torch).
        sed -i "s/-std=c++17/-std=c++20/g; s|/std:c++17|/std:c++20|g" "$src/setup.py"
        mkdir -p "$WHEEL_DIR"
        (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA="$MMCV_CUDA" MAX_JOBS="$(nproc)" \
            "$VPY" -m pip wheel --disable-pip-version-check -q --no-build-isolation --no-deps \
            -w "$WHEEL_DIR.partial" .)
        mv "$WHEEL_DIR.partial"/mmcv-*.whl "$WHEEL_DIR"/ && rmdir "$WHEEL_DIR.partial"
        wheel="$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)"
    else
        log "reusing cached mmcv wheel $wheel"
    fi
    pip_install --force-reinstall --no-deps "$wheel"
    echo "$MMCV_TAG" > "$INSTALLED_TAG_FILE"
fi

log "installing the OpenMMLab stack, silc_seg (editable) and test/optional requirements"
pip_install -r requirements/runtime.txt -r requirements/mminstall.txt \
    -r requirements/optional.txt -r requirements/tests.txt
pip_install --no-deps --no-build-isolation -e .
# The demo page's extra (tools/app.py) and, for its browser test, Chromium with its driver.
pip_install -r requirements/app.txt
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    :
elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing chromium and chromium-driver (apt) for the browser test of tools/app.py"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends chromium chromium-driver >/dev/null; } \
        || log "apt-get could not install chromium: the browser test will be skipped"
else
    log "no chromium/chromedriver and no root apt-get: the browser test of tools/app.py will be skipped"
fi
# Fonts with CJK and emoji glyphs, for legends in other scripts (docs/install.md, "Fonts").
if fc-list 2>/dev/null | grep -qi 'Noto Sans CJK' && fc-list 2>/dev/null | grep -qi 'Noto Color Emoji'; then
    :
elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing fonts-noto-cjk and fonts-noto-color-emoji (apt) for CJK / emoji legends"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends fonts-noto-cjk fonts-noto-color-emoji fontconfig >/dev/null; } \
        || log "apt-get could not install the fonts: the CJK / emoji legend test will be skipped"
else
    log "no CJK / emoji fonts and no root apt-get: the CJK / emoji legend test will be skipped"
fi

if ! "$VPY" -c "import silc_seg, mmseg.models, mmpretrain.models, mmcv.ops"; then
    log "verification import failed"; exit 1
fi
echo "$KEY" > "$STAMP"
log "done in $((SECONDS - start)) s; venv size $(du -sh "$VENV" | cut -f1)"
