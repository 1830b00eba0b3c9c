#!/bin/sh
# The full-profile command for a GPU machine without network (docs/GPU.md): the notebook at the assignment's settings, the
# report and the benchmark, everything under $OUT (default results-gpu).
#
#   tools/gpu_run.sh [DATA_FOLDER]      DATA_FOLDER holds endo-real/ and FashionMNIST/raw/ (default .gpu-data)
#
# The machine's python3 has torch; hw6 is made importable without installing it (a link to this folder on
# PYTHONPATH), and the notebook's packages, which that machine lacks, are installed from the wheels in .whl/.
set -eu
cd "$(dirname "$0")/.."
DATA="${1:-.gpu-data}"
SHIM="$(mktemp -d)"
ln -s "$PWD" "$SHIM/hw6"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site"
fi
export PYTHONPATH="$SHIM${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
for gz in "$DATA"/FashionMNIST/raw/*.gz; do  # torchvision reads the uncompressed files
    [ -e "$gz" ] && [ ! -e "${gz%.gz}" ] && gunzip -k "$gz"
done
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
exec python3 tools/full_run.py --out "${OUT:-results-gpu}" --data "$DATA/endo-real" --fashion "$DATA"
