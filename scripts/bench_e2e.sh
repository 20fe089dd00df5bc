#!/bin/sh
# End-to-end throughput and memory, convgrad against PyTorch, measured in the same run:
# `convgrad bench` and scripts/torch_bench.py, one process per model, 2 threads, glibc told to
# keep freed memory on both sides (DESIGN.md). Prints the markdown table of BENCHMARKS.md.
#
#     scripts/bench_e2e.sh [python]        # python: an interpreter with torch, torchvision, timm
#     STEPS=10 scripts/bench_e2e.sh ...     # timed steps per phase and side (default 5)
#
# Needs a release build (cargo build --release). Never run by the tests.
set -eu
PYTHON=${1:-python3}
STEPS=${STEPS:-5}
BIN=${CARGO_TARGET_DIR:-target}/release/convgrad
export MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000

echo "| model | input, batch | convgrad train img/s | PyTorch train img/s | ratio | convgrad infer img/s | PyTorch infer img/s | ratio | peak memory (train) convgrad / PyTorch |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
while read -r model batch size; do
    ours=$("$BIN" bench "$model" --batch-size "$batch" --size "$size" --threads 2 --steps "$STEPS" 2>/dev/null)
    train=$(echo "$ours" | awk '/^training:/ {print $2}')
    infer=$(echo "$ours" | awk '/^inference:/ {print $2}')
    memory=$(echo "$ours" | awk '/^training:/ {print $(NF-1)}')
    theirs=$("$PYTHON" scripts/torch_bench.py "$model" --batch-size "$batch" --size "$size" --threads 2 --steps "$STEPS")
    t_train=$(echo "$theirs" | sed 's/.*"train_img_s": \([0-9.]*\).*/\1/')
    t_infer=$(echo "$theirs" | sed 's/.*"infer_img_s": \([0-9.]*\).*/\1/')
    t_memory=$(echo "$theirs" | sed 's/.*"peak_train_mb": \([0-9.]*\).*/\1/')
    echo "$model $batch $size $train $t_train $infer $t_infer $memory $t_memory" | awk '{
        printf "| %s | %sx%s, %s | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f | %s MB / %s MB |\n",
            $1, $3, $3, $2, $4, $5, $4 / $5, $6, $7, $6 / $7, $8, $9 }'
done <<MODELS
lenet5 64 28
resnet18 32 32
mobilenet_v2 32 32
mobilenet_v1 32 32
xception 32 32
densenet121 16 32
MODELS
