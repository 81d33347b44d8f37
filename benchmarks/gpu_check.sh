#!/usr/bin/env bash
# The GPU check of the paper configurations: nvidia-smi, then benchmarks/bench_paper_gpu.py at the
# full shape (ResNet18-L10 and ViT16-L40, batch 512, 256 px, 5 warm-up + 20 timed steps per mode;
# expected to take 1-3 minutes on one H200, imports included; not yet run on one), under a timeout.
#
#   bash benchmarks/gpu_check.sh                       # from the repository root
#   OUT=/some/dir bash benchmarks/gpu_check.sh         # results under $OUT instead of results/bench
#   bash benchmarks/gpu_check.sh --amp bf16 --out results/bench/paper_gpu_bf16.json   # extra args go to the script
#
# Writes <dir>/paper_gpu.json, <dir>/paper_gpu.log (appended to) and <dir>/nvidia-smi.txt, <dir> = ${OUT:-results/bench};
# nothing else outside the repository (caches go to a temporary folder under results/bench, removed
# at the end).
#
# Python: $PYTHON, else the repository's .venv when it has torch, else python3. It needs what
# pyproject.toml pins (`pip install -e .`: torch 2.14.1, torchvision 0.29.1, torchgeo 0.10.1 with
# timm, lightning >= 2.4, numpy, pandas, pyyaml, global-land-mask). A bare image with only torch,
# timm, lightning, numpy, pandas and pyyaml also works: the script then builds the backbones with
# timm (what torchgeo does for weights=None), counts every validation candidate as land (unused in
# the timed steps), imports satclip from src/, and records both substitutions in the JSON.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${OUT:-results/bench}"
mkdir -p "$dir" results/bench
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]] && .venv/bin/python -c 'import torch' 2>/dev/null; then
        PYTHON=.venv/bin/python
    else
        PYTHON=python3
    fi
fi
cache="$(mktemp -d results/bench/.cache.XXXXXX)"
trap 'rm -rf "$cache"' EXIT
export MPLCONFIGDIR="$cache/matplotlib" XDG_CACHE_HOME="$cache" TORCH_HOME="$cache/torch" \
    HF_HOME="$cache/hf" TRITON_CACHE_DIR="$cache/triton" PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1

{ nvidia-smi || echo "nvidia-smi failed (no NVIDIA driver?)"; } 2>&1 | tee "$dir/nvidia-smi.txt"
"$PYTHON" -c 'import sys, torch; print(sys.executable, "torch", torch.__version__, "cuda", torch.version.cuda,
"available", torch.cuda.is_available())'
timeout "${BENCH_TIMEOUT:-420}" "$PYTHON" benchmarks/bench_paper_gpu.py --out "$dir/paper_gpu.json" "$@" \
    2>&1 | tee -a "$dir/paper_gpu.log"
