#!/usr/bin/env bash
# Bring up silc-seg on a bare GPU machine (Python 3.12 + torch, no MMLab packages, no network)
# from the wheels in .gpu_wheels (tools/gpu_kit/prepare_wheels.sh), then run the GPU benchmarks.
# Everything is installed into a temporary folder removed at exit (GPU_KIT_DIR to keep one);
# logs and summary.txt under $OUT.
#
#   bash tools/gpu_kit/run_gpu_benchmarks.sh              # setup + GPU benchmarks (per-run
#                                                         # time limits; never run on a GPU yet)
#   bash tools/gpu_kit/run_gpu_benchmarks.sh --setup-only # setup and import check only
#   bash tools/gpu_kit/run_gpu_benchmarks.sh --smoke      # setup + every benchmark at toy size
#                                                          # on CPU (tests the kit without a GPU)
# Environment: PYTHON (default python3), GPU_KIT_WHEELS (default .gpu_wheels), OUT (default
# work_dirs/gpu_kit), PEAK_TFLOPS (dense bf16 peak for MFU; default from the device name),
# GPU_KIT_BUDGET_S (seconds for the whole run, setup included; default 570).
# With the device tool: run(command="bash tools/gpu_kit/run_gpu_benchmarks.sh",
#                           carry=[".gpu_wheels"], timeout_s=600)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KIT_SRC="$ROOT/tools/gpu_kit"
PY="${PYTHON:-python3}"
WHEELS="${GPU_KIT_WHEELS:-$ROOT/.gpu_wheels}"
KIT="${GPU_KIT_DIR:-$(mktemp -d -t silc-gpu-kit.XXXXXX)}"
[[ -n "${GPU_KIT_DIR:-}" ]] || trap 'rm -rf "$KIT"' EXIT
SITE="$KIT/site"
SHIMS="$KIT/shims"
OUT="${OUT:-$ROOT/work_dirs/gpu_kit}"
MODE=gpu
BUDGET_S="${GPU_KIT_BUDGET_S:-570}"
case "${1:-}" in
    --setup-only) MODE=setup ;;
    --smoke) MODE=smoke ;;
    '') ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
esac
# The CPU smoke run is slow and has no device time to save.
[[ "$MODE" == smoke ]] && BUDGET_S="${GPU_KIT_BUDGET_S:-3600}"
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
START=$SECONDS
log() { printf '[gpu_kit %4ds] %s\n' "$((SECONDS - START))" "$*" | tee -a "$SUMMARY"; }
: > "$SUMMARY"

# ------------------------------------------------------------------------------------------
# Setup: pure-Python wheels always (pinned); binary ones only where the machine lacks them;
# stand-ins (tools/gpu_kit/stand_ins.py, written into $SHIMS) for what is imported but never
# run and not installable here.
system_has() { env -u PYTHONPATH "$PY" -c "import $1" >/dev/null 2>&1; }
module_of() {
    case "$1" in pillow) echo PIL ;; pyyaml) echo yaml ;; *) echo "${1//-/_}" ;; esac
}

setup() {
    local torch_line
    torch_line="$(env -u PYTHONPATH "$PY" -c 'import torch
print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")' 2>&1 | tail -1)"
    log "python: $("$PY" --version 2>&1); $torch_line"
    system_has torch || { log "FATAL: $PY has no torch"; exit 1; }
    [[ -d "$WHEELS" ]] || {
        log "FATAL: no wheel folder $WHEELS (run prepare_wheels.sh, carry it)"; exit 1; }
    [[ -f "$WHEELS/KIT_TARGET" ]] && log "wheels prepared for $(cat "$WHEELS/KIT_TARGET")"
    rm -rf "$SITE" "$SHIMS"
    mkdir -p "$SITE" "$SHIMS"
    local wheels=() skipped=() spec name optional file
    while read -r spec optional; do
        [[ -z "$spec" || "$spec" == \#* ]] && continue
        name="${spec%%==*}"
        if [[ "$optional" == optional ]] && system_has "$(module_of "$name")"; then
            skipped+=("$name")
            continue
        fi
        file="$(ls "$WHEELS"/"${name//-/_}"-*.whl 2>/dev/null | head -n1)"
        [[ -n "$file" ]] || { log "FATAL: no wheel for $name in $WHEELS"; exit 1; }
        wheels+=("$file")
    done < "$KIT_SRC/packages.txt"
    log "installing ${#wheels[@]} wheels into $SITE (machine's own: ${skipped[*]:-none})"
    "$PY" -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
        --target "$SITE" "${wheels[@]}" 2>&1 | grep -v -e '^WARNING: Target directory' \
        -e "^WARNING: Location" | tee -a "$SUMMARY"
    # mmcv-lite has no compiled ops; mmcv.ops is imported (not run) by mmseg.models.
    "$PY" "$KIT_SRC/stand_ins.py" "$SITE" mmcv._ext > /dev/null || {
        log "FATAL: could not write the mmcv._ext stand-in"; exit 1; }
    export PYTHONPATH="$SITE:$ROOT:$SHIMS"
    if ! "$PY" -c 'import torchvision' >/dev/null 2>&1; then
        log "torchvision does not import with this torch: using the stand-in"
        rm -rf "$SITE"/torchvision "$SITE"/torchvision-*
        "$PY" "$KIT_SRC/stand_ins.py" "$SHIMS" torchvision > /dev/null
    fi
    for package in cv2 scipy; do
        if ! "$PY" -c "import $package" >/dev/null 2>&1; then
            "$PY" "$KIT_SRC/stand_ins.py" "$SHIMS" "$package" > /dev/null
            log "$package: stand-in (imported at module level, not used by the benchmarks)"
        fi
    done
    "$PY" - <<'EOF' 2>&1 | tee -a "$SUMMARY"
import importlib
for name in ('mmengine', 'mmcv', 'mmseg', 'mmpretrain', 'open_clip', 'torchvision', 'numpy'):
    module = importlib.import_module(name)
    print(f'  {name} {getattr(module, "__version__", "?")} from {module.__file__}')
import mmseg.models, mmpretrain.models, silc_seg  # noqa: E401,F401
from silc_seg.registry import MODELS
print('  import silc_seg, mmseg.models, mmpretrain.models: ok;',
      len(MODELS.module_dict), 'models registered in the mmseg scope')
EOF
    [[ "${PIPESTATUS[0]}" -eq 0 ]] || { log "FATAL: import check failed"; exit 1; }
    log "setup done"
}

# ------------------------------------------------------------------------------------------
# Benchmarks: each under its own time limit, its log in $OUT/<name>.log; a failure is
# recorded and the next one runs.
run_bench() {
    local name="$1" limit="$2"
    shift 2
    local begin=$SECONDS
    # The whole run, setup included, stays within BUDGET_S (the device tool stops a command at
    # 600 s; what ran by then is still in $OUT).
    local left=$((BUDGET_S - (SECONDS - START)))
    if (( left < 30 )); then
        log "$name: skipped, ${left} s of the ${BUDGET_S} s budget left"
        return
    fi
    (( limit > left )) && limit=$left
    log "$name (limit ${limit} s): $*"
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    # The result lines (from the first 'config:' line on; MMEngine's weight-init report and
    # warnings before it stay in the log).
    if grep -q '^config:' "$OUT/$name.log"; then
        sed -n '/^config:/,$p' "$OUT/$name.log"
    else
        tail -n 12 "$OUT/$name.log"
    fi | grep -v -i -e 'warn' | sed 's/^/    /' | tee -a "$SUMMARY"
    log "$name: exit $rc after $((SECONDS - begin)) s$([[ $rc -eq 124 ]] && echo ' (time limit)')"
}

peak_tflops() {
    if [[ -n "${PEAK_TFLOPS:-}" ]]; then echo "$PEAK_TFLOPS"; return; fi
    "$PY" - <<'EOF'
import torch
name = torch.cuda.get_device_name() if torch.cuda.is_available() else ''
# Dense bf16 tensor-core peaks (NVIDIA data sheets): H100/H200 SXM 989, H100 PCIe 756, A100 312.
peaks = [('H100 PCIe', 756), ('H100', 989), ('H200', 989), ('A100', 312)]
print(next((value for key, value in peaks if key in name), 0))
EOF
}

setup
[[ "$MODE" == setup ]] && exit 0
cd "$ROOT"
STEP=tools/analysis_tools/benchmark_step.py
CLIP=tools/analysis_tools/benchmark_openclip_step.py
ZS=tools/analysis_tools/benchmark_zeroshot.py
CATSEG=tools/analysis_tools/benchmark_catseg.py
FSDP=tools/analysis_tools/benchmark_fsdp_step.py
PIPE=tools/analysis_tools/benchmark_pipeline.py
if [[ "$MODE" == smoke ]]; then
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
    run_bench silc_step 300 "$PY" $STEP configs/silc/demo_silc_tiny.py --batch-size 4 \
        --iters 1 --warmup 1 --device cpu --peak-tflops 0.1
    run_bench clip_vs_openclip 600 "$PY" $CLIP --batch-size 1 --iters 1 --warmup 0 --device cpu \
        --memory
    run_bench siglip2_recipe_step 300 "$PY" $STEP configs/silc/demo_siglip2_tiny.py \
        --batch-size 4 --iters 1 --warmup 1 --device cpu --caption-tokens 12
    run_bench zeroshot 300 "$PY" $ZS configs/silc/zs_demo.py --num-images 2 --image-size 96 96 \
        --repeats 1 --device cpu
    run_bench fsdp_step 300 "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 \
        $FSDP configs/silc/demo_silc_fsdp_tiny.py --batch-size 4 --iters 1 --warmup 1
    run_bench device_augment 300 "$PY" $PIPE --main-only --rounds 1 --batch-size 4 --device cpu
    if [[ -f $CATSEG ]]; then
        run_bench catseg 300 "$PY" $CATSEG configs/silc/catseg_tiny_coco-stuff171.py \
            --device cpu --iters 2 --warmup 1 --test-images 2 --out "$OUT/catseg_tiny_cpu.json"
    else
        run_bench catseg_head 300 "$PY" tools/analysis_tools/benchmark_catseg_head.py \
            configs/silc/catseg_b16_ade847.py --num-classes 8 --num-class-slots 0
    fi
    log "smoke run done"
    exit 0
fi

"$PY" -c 'import torch; assert torch.cuda.is_available()' || { log "FATAL: no GPU"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 \
    | sed 's/^/    /' | tee -a "$SUMMARY"
PEAK="$(peak_tflops)"
log "MFU against a dense bf16 peak of $PEAK TFLOP/s"
# SILC B/16, the paper's geometry (2x224 + 6x96 crops, K=65536), 128 pairs per GPU as in
# configs/silc/pretrain_b16.py, bf16 autocast; the contrastive-only step alongside.
run_bench silc_step 180 "$PY" $STEP configs/silc/pretrain_b16.py --amp --batch-size 128 \
    --iters 10 --warmup 3 --device cuda --peak-tflops "$PEAK"
run_bench silc_step_fused_adamw 150 "$PY" $STEP configs/silc/pretrain_b16.py --amp \
    --batch-size 128 --iters 10 --warmup 3 --device cuda --peak-tflops "$PEAK" --fused
# The same model sharded with FSDP (configs/silc/pretrain_silc_vit-b16_fsdp.py: bf16 policy,
# activation checkpointing, the EMA on local shards), one GPU, 256 pairs; JSON in $OUT.
run_bench fsdp_b16_step 170 "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 \
    $FSDP configs/silc/pretrain_silc_vit-b16_fsdp.py --batch-size 256 --iters 5 --warmup 2 \
    --peak-tflops "$PEAK" --json "$OUT/fsdp_b16_step.json"
# CLIP-mode step vs open_clip ViT-B-16 + ClipLoss, same batch, bf16 autocast, AdamW.
run_bench clip_vs_openclip 180 "$PY" $CLIP --amp --batch-size 256 --iters 10 --warmup 3 \
    --device cuda --memory
# Zero-shot segmentation, ADE-150 protocol (an ADE image of 512x683 resized to short side 336),
# 150 classes x 80 templates, sliding 224 windows.
run_bench zeroshot 150 "$PY" $ZS configs/silc/zs_ade150.py --num-images 8 --image-size 336 448 \
    --repeats 2 --device cuda
# Photometric augmentation on the device: what augmenting a 128-sample multi-crop batch costs on
# the GPU (the worker side decodes with OpenCV, which the kit does not install).
run_bench device_augment 120 "$PY" $PIPE --main-only --rounds 5 --batch-size 128 --device cuda
# CAT-Seg: training iteration (4 x 384 px, 171 COCO-Stuff classes, fp32 as the reference) and
# test images/s (ADE-150 sliding protocol); JSON in $OUT. Before that script existed: the head.
if [[ -f $CATSEG ]]; then
    run_bench catseg 170 "$PY" $CATSEG configs/silc/catseg_b16_coco-stuff171.py --device cuda \
        --dtype fp32 --batch-size 4 --warmup 5 --iters 20 --test-images 10 \
        --out "$OUT/catseg_b16_fp32.json"
else
    run_bench catseg_head 150 "$PY" tools/analysis_tools/benchmark_catseg_head.py \
        configs/silc/catseg_b16_ade847.py --num-classes 847 --device cuda
fi
# SigLIP 2 recipe B/16 (256 px; LocCa decoder over the 256k Gemma vocabulary; second-stage
# heads) vs SigLIP-only on the same towers: step times, FLOP ratios, peak CUDA memory per step.
if (( SECONDS - START < 380 )); then
    run_bench siglip2_recipe_step 150 "$PY" $STEP configs/silc/pretrain_siglip2_b16.py --amp \
        --batch-size 32 --iters 5 --warmup 2 --device cuda --caption-tokens 16
else
    log "siglip2_recipe_step: skipped, not enough time left"
fi
# torch.compile of the blocks, last: compilation time is the least predictable.
if (( SECONDS - START < 420 )); then
    run_bench silc_step_compiled 170 "$PY" $STEP configs/silc/pretrain_b16.py --amp \
        --batch-size 128 --iters 10 --warmup 3 --device cuda --peak-tflops "$PEAK" --compile
else
    log "silc_step_compiled: skipped, not enough time left"
fi
log "all done"
