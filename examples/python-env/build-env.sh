#!/bin/sh
# Build tokenizer/env.tar.gz: a conda-pack of the Python the model runs in. The Python
# version must match the Triton image's Python backend stub (3.10 for 24.09). Needs conda
# and conda-pack (conda install -n base -c conda-forge conda-pack). Then upload, e.g.
#   aws s3 sync tokenizer/ s3://my-model-repos/tokenizer/
set -eu
cd "$(dirname "$0")"
conda create -y -p ./.env python=3.10 numpy
conda pack -p ./.env -o tokenizer/env.tar.gz --force
rm -rf ./.env
