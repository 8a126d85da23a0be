#!/bin/sh
# Installs into an image, byte-compiled, with uv's cache and temporary files outside it (the Dockerfile mounts
# a cache at /var/cache/uv). Run by the Dockerfile, from /opt/meshserve/share:
#   install.sh LOCK [UV-ARGS...]  syncs the dependencies' virtualenv (/opt/meshserve) to the lock, then drops
#                                 what nothing loads at run time: TensorFlow's C++ headers (only for compiling
#                                 custom ops) and the test suites some wheels ship
#   install.sh --app SOURCE       meshserve itself into /opt/meshserve-app, without dependencies
set -eu
export UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_CACHE_DIR=/var/cache/uv UV_PYTHON_DOWNLOADS=never \
  TMPDIR=/var/cache/uv/tmp
mkdir -p "$TMPDIR"
PYTHON=/opt/meshserve/bin/python
if [ "${1:?usage: install.sh LOCK [UV-ARGS...] | --app SOURCE}" = --app ]; then
  uv pip install --quiet --python "$PYTHON" --target /opt/meshserve-app --no-deps "${2:?usage: install.sh --app SOURCE}"
  exit
fi
LOCK=$(dirname "$0")/$1
shift
uv pip sync --quiet --python "$PYTHON" "$@" "$LOCK"
site=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
rm -rf "$site/tensorflow/include"
for package in numpy pandas scipy sklearn matplotlib; do
  if [ -d "$site/$package" ]; then find "$site/$package" -depth -type d -name tests -exec rm -rf {} +; fi
done
