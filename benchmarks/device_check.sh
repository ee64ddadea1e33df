#!/usr/bin/env bash
# The engine's figures on whatever accelerator this machine has, in one short run: the devices JAX sees, one epoch
# per network (Digit Lab beside PyTorch), and a sweep's speed-up. On a GPU that confirms the README's GPU claims:
# epoch times per network, the sweep speed-up, and the 784-300-10 MLP's epoch against the 0.1 s aimed at.
#
#     MNIST_DATA_DIR=/path/to/mnist benchmarks/device_check.sh
#
# PYTHON names the interpreter (default python3). Packages the machine lacks may come as wheels in .whl/
# (benchmarks/README.md says which, and how to fetch them); they are installed to a scratch folder first.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/device-site \
    .whl/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/device-site"
fi
: "${MNIST_DATA_DIR:?set MNIST_DATA_DIR to the folder holding MNIST}"

echo "== devices"
"$python" -c 'import jax; print(jax.__version__, jax.default_backend(), jax.devices())'
echo "== one epoch per network (best of 2), Digit Lab beside PyTorch"
"$python" benchmarks/epoch_vs_pytorch.py --repeats 2
echo "== a sweep of 8 variants against the same runs one by one (best of 2)"
"$python" benchmarks/sweep_speedup.py --repeats 2
