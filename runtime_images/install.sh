#!/bin/sh
# Installs meshserve and its locked dependencies into the Python interpreter given as $1, from the repository
# root. Both images run exactly this (see their Dockerfiles); tests/test_runtime_images.py runs it into a
# fresh virtualenv and starts the step entry point and the model server from there.
set -eu
PYTHON=${1:?usage: install.sh PYTHON}
"$PYTHON" -m pip install --quiet --disable-pip-version-check uv==0.13.9
"$PYTHON" -m uv pip sync --quiet --python "$PYTHON" requirements.lock
"$PYTHON" -m uv pip install --quiet --python "$PYTHON" --no-deps .
