#!/usr/bin/env bash
# Write into DIR the wheels that benchmarks/gpu_check.py needs on a GPU machine with Python 3.12,
# PyTorch (+ torchvision, numpy 2, transformers 5, OpenCV, h5py, pandas, scikit-learn)
# preinstalled and no package index. Run it where PyPI is reachable:
#
#     bash benchmarks/gpu_wheels.sh /tmp/gpu_wheels     # then carry the folder to the GPU machine
#
# Binary wheels are downloaded for CPython 3.12 / manylinux x86-64; iopath, fairscale and
# antlr4-python3-runtime exist only as sdists (pure Python), so they are built here into
# py3-none-any wheels. gpu_check.py unpacks every *.whl of the folder into a private directory
# and puts it first on sys.path: nothing is installed, and the machine's own packages stay.
set -euo pipefail

DIR=${1:?usage: bash benchmarks/gpu_wheels.sh DIR}
PYTHON=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

# Versions LAVIS 1.0.2 accepts; transformers 4.26 wants huggingface_hub < 1.0.
BINARY=(
  "salesforce-lavis==1.0.2"
  "transformers==4.26.1"
  "timm==0.4.12"
  "omegaconf==2.3.0"
  "huggingface_hub>=0.11,<1.0"
  "webdataset==0.2.86"
  "braceexpand==0.1.7"
  "pycocotools==2.0.8"
  "ftfy==6.1.1"
  "wcwidth==0.2.13"
  "portalocker==2.10.1"
  "einops==0.8.0"
  # transformers 4.26 and huggingface_hub 0.x import requests; recent stacks (httpx) lack it.
  "requests==2.32.3"
  "urllib3==2.2.3"
  "idna==3.10"
  "certifi==2024.8.30"
  "charset-normalizer==3.4.0"
)
SDIST_ONLY=("iopath==0.1.10" "fairscale==0.4.4" "antlr4-python3-runtime==4.9.3")

echo "downloading ${#BINARY[@]} wheels for CPython 3.12 into $DIR"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
  -d "$DIR" "${BINARY[@]}"

echo "building pure-Python wheels from sdists: ${SDIST_ONLY[*]}"
# fairscale's setup.py reads torch only to build optional CUDA kernels (off by default).
"$PYTHON" -m pip wheel --quiet --no-deps --no-binary=:all: -w "$DIR" "${SDIST_ONLY[@]}"

echo "building the lavis_syncmask wheel from $ROOT"
"$PYTHON" -m pip wheel --quiet --no-deps -w "$DIR" "$ROOT"

# A compiled sdist build would be tied to this machine's Python: refuse it.
if ls "$DIR"/*.whl | grep -v -E -- '-(py3|py2\.py3)-none-any\.whl$|-cp312-' ; then
  echo "error: the wheels above are neither pure Python nor CPython 3.12" >&2
  exit 1
fi
ls -l "$DIR"
SIZE_KB=$(du -sk "$DIR" | cut -f1)
echo "total: $((SIZE_KB / 1024)) MB ($SIZE_KB KB) in $(ls "$DIR"/*.whl | wc -l) wheels"
if [ "$SIZE_KB" -gt $((60 * 1024)) ]; then
  echo "error: $DIR is over 60 MB" >&2
  exit 1
fi
