#!/usr/bin/env bash
# One-shot GPU check (issues 8 and 14): fills the CUDA rows of benchmarks/RESULTS.md on one H100/H200 in under
# 8 minutes, printing every figure as soon as it is measured.
#
#   bash benchmarks/gpu_check.sh [OUTPUT_DIR]        (default: $OUT if set, else ./gpu_results)
#
# Each section runs as its own `benchmarks/run.py --device cuda` call under its own time limit, so one failure
# or overrun does not lose the others; each writes OUTPUT_DIR/<section>.json and .log. Sections, in order of
# what the issues' targets need most:
#   graphs      eager vs CUDA graphs (CUDAGraphRunner) vs torch.compile, batch 1 / 32 / 256 x 10 s bf16, peak memory,
#               deviation from eager (benchmarks/gpu_graphs.py; ~4 min, most of it compiling; compiled rows last; on an H200 the three static
#               compiles took 79 + 61 + 59 s)
#   inference   bf16, batch 1 / 32 / 256 x 10 s: the one pass (ms per call, s of audio per s, peak memory) and,
#               at batch 32, the three teachers one after another in the same process (~1 min on an H200)
#   training    50 stage-1 steps with cached targets, mt2kd-66m, batch 64 x 10 s, bf16 autocast: throughput, FLOPs, MFU
#               (~40 s on an H200)
#   fast_paths  greedy-search predictor (batched matmul vs conv1d) at batch 1 / 32; bf16-vs-fp32 deviation (~1 min)
#   long_form   10 minutes through the chunked transducer pipeline, fp32: time and peak CUDA memory (60 s; the
#               per-frame greedy search makes the 66M model's 10 minutes take most of it on a GPU)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu_results}}"
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
mkdir -p "$out"

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/nvidia-smi.csv"
# The import packages processing_mt2kd / training_mt2kd exist only once the checkout is installed (setup.py
# package_dir); install it without touching dependencies if this machine has not.
if ! "$PYTHON" -c "import processing_mt2kd, training_mt2kd" 2>/dev/null; then
    "$PYTHON" -m pip install --quiet --no-deps --no-build-isolation -e . 2>/dev/null || true
fi
if ! "$PYTHON" -c "import processing_mt2kd, training_mt2kd" 2>/dev/null; then
    # No installer (e.g. an offline image without setuptools' editable support): link the import names to the
    # checkout's folders (setup.py's PACKAGE_DIRS) and put them on the path.
    links=$(mktemp -d)
    ln -s "$PWD/configuration_mt2kd" "$links/configuration_mt2kd"
    ln -s "$PWD/modeling_mt2kd" "$links/modeling_mt2kd"
    ln -s "$PWD/processing" "$links/processing_mt2kd"
    ln -s "$PWD/training" "$links/training_mt2kd"
    export PYTHONPATH="$links${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"

run_section() {  # name, time limit in seconds
    local name=$1 limit=$2
    echo "=== $name (limit ${limit} s) ==="
    timeout "$limit" "$PYTHON" benchmarks/run.py --device cuda --sections "$name" --output "$out/$name.json" \
        2>&1 | grep --line-buffered -v ": round " | tee "$out/$name.log"
    local status=${PIPESTATUS[0]}
    [ "$status" -eq 0 ] || echo "=== $name FAILED or timed out (exit $status); see $out/$name.log ==="
}

echo "=== graphs (limit 240 s) ==="
timeout 240 "$PYTHON" benchmarks/gpu_graphs.py --output "$out/graphs.json" 2>&1 | tee "$out/graphs.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || echo "=== graphs FAILED or timed out; see $out/graphs.log ==="
run_section training 60
run_section inference 80
run_section fast_paths 30
run_section long_form 60
echo "=== done: $out ==="
