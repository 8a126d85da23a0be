"""Importing the library or the CLI must not pull in heavy frameworks."""

import subprocess
import sys

HEAVY = ("tensorflow", "sklearn", "kubernetes", "kfp", "keras", "hera", "s3fs", "boto3")


def test_importing_packages_loads_no_heavy_framework():
    code = (
        "import sys, components, pipelines, pipelines.cli, components.training, components.storage, "
        "components.datasets, components.manifest, components.steps.train.core, components.steps.upload.core\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def test_cli_help_loads_no_heavy_framework():
    code = (
        "import sys, contextlib, io\nfrom pipelines.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()): main(['train', '--help'])\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
