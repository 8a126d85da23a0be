"""The container image every step runs in; its tag follows the package version, so nothing installs at
pod start (runtime_images/Dockerfile, target steps, builds it)."""

from components import __version__

STEP_IMAGE = f"ghcr.io/meshserve/steps:{__version__}"
