#!/bin/sh
# Makes sure the images' base, docker.io/library/python:3.11-slim, is in podman's store. It is pulled
# wherever the registry answers. Where it does not (the development and CI machines reach only package
# registries), a stand-in is built once from Debian's packages and cached outside the repository
# ($MESHSERVE_IMAGE_CACHE, default ~/.cache/meshserve-images):
#   - Debian bookworm, minbase, with Python 3.11 and CA certificates;
#   - a virtualenv at /usr/local, so that `python` and `pip` resolve as in the official image;
#   - this machine's extra CA certificates trusted inside (SSL_CERT_FILE, PIP_CERT), so that installs
#     during a build behave as they do on the host.
# Prints the image's name.
set -eu
IMAGE=docker.io/library/python:3.11-slim
CACHE=${MESHSERVE_IMAGE_CACHE:-$HOME/.cache/meshserve-images}
ARCHIVE=$CACHE/python-3.11-slim-stand-in.tar
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if podman image exists "$IMAGE" || timeout 120 podman pull -q "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE"; exit 0
fi

if [ ! -f "$ARCHIVE" ]; then
  command -v debootstrap >/dev/null || { echo "base image: install debootstrap (or make $IMAGE pullable)" >&2; exit 1; }
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase \
    --include=python3.11,python3.11-venv,python3-distutils,python3-lib2to3,python3,ca-certificates \
    bookworm "$root" "$MIRROR" >&2
  chroot "$root" python3.11 -m venv /usr/local
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$root" update-ca-certificates >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc "$root"/usr/share/man
  mkdir -p "$CACHE"
  tar -C "$root" --numeric-owner -cf "$ARCHIVE.part" . && mv "$ARCHIVE.part" "$ARCHIVE"
fi

bundle=/etc/ssl/certs/ca-certificates.crt
podman import -q \
  --change "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV LANG=C.UTF-8" \
  --change "ENV SSL_CERT_FILE=$bundle" \
  --change "ENV PIP_CERT=$bundle" \
  --change 'CMD ["python3"]' \
  "$ARCHIVE" "$IMAGE" >/dev/null
echo "$IMAGE"
