"""Importing the library or the CLI must not pull in heavy frameworks."""

import subprocess
import sys

HEAVY = ("tensorflow", "sklearn", "kubernetes", "kfp", "keras", "hera", "s3fs", "boto3")


def heavy_modules_loaded_by(code: str) -> str:
    """Run `code` in a fresh interpreter; return the heavy modules it left imported."""
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()


def test_importing_packages_loads_no_heavy_framework():
    assert heavy_modules_loaded_by(
        "import components, pipelines, pipelines.cli, components.training, components.storage, "
        "components.datasets, components.manifest, components.steps.train.core, components.steps.upload.core"
    ) == ""


def test_cli_help_loads_no_heavy_framework():
    assert heavy_modules_loaded_by(
        "import contextlib, io\nfrom pipelines.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()): main(['train', '--help'])"
    ) == ""


def test_probe_detects_a_heavy_import():
    assert heavy_modules_loaded_by("import sklearn") == "sklearn"
