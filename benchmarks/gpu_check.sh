#!/usr/bin/env bash
# The GPU check in one command (see benchmarks/gpu_check.py), for a single-GPU machine with
# PyTorch preinstalled and no network. WHEELS is the folder benchmarks/gpu_wheels.sh wrote;
# OUT the JSON to write (default gpu_check.json). Extra arguments go to gpu_check.py.
#
#     bash benchmarks/gpu_check.sh /path/to/gpu_wheels "$OUT/gpu_check.json"
set -euo pipefail
WHEELS=${1:?usage: bash benchmarks/gpu_check.sh WHEELS_DIR [OUT.json] [gpu_check.py args]}
OUT=${2:-gpu_check.json}
shift $(( $# >= 2 ? 2 : 1 ))
WHEELS=$(cd "$WHEELS" && pwd)                      # both taken from the caller's folder
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec timeout 480 "${PYTHON:-python3}" benchmarks/gpu_check.py --device cuda --wheels "$WHEELS" --out "$OUT" "$@"
