"""Import-time quirks of third-party packages, handled in one place."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def import_kserve(module: str = "kserve") -> ModuleType:
    """Import a kserve module without letting kserve parse this process's command line.

    `kserve.model_server` runs `argparse.parse_known_args()` on sys.argv at import time, so a
    meshserve command whose flags overlap KServe's (e.g. --protocol) would be rejected by KServe.
    """
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        return importlib.import_module(module)
    finally:
        sys.argv = saved
