#!/usr/bin/env bash
# Gradescope runs this once when building the autograder image (network available there).
set -euo pipefail
cd /autograder/source
apt-get update
apt-get install -y --no-install-recommends python3.11 python3.11-venv
python3.11 -m venv .venv
# The CPU build of torch: the default index would install a multi-GB CUDA build.
.venv/bin/pip install --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}" torch==2.13.0
.venv/bin/pip install .
cp run_autograder /autograder/run_autograder
chmod +x /autograder/run_autograder
