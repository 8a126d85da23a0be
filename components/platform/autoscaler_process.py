"""The local autoscaler's process: `python -m components.platform.autoscaler_process STATE_DIR SYNC_PERIOD_S`
syncs the targets kept in the state directory every period until stopped (SIGTERM, from `meshserve local down`).
Started by AutoscalerProcess (components/platform/autoscaler.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from components.errors import MeshserveError
from components.platform.autoscaler import AutoscalerProcess, LocalAutoscaler
from components.platform.local import LocalPlatform


def main(root: Path, sync_period_s: float) -> None:
    """Sync the kept targets every period, saying each change; a failed sync is said, and the next retries."""
    autoscaler = LocalAutoscaler(LocalPlatform(root), [])
    while True:
        autoscaler.targets = AutoscalerProcess(root).targets()
        try:
            for outcome in autoscaler.sync():
                if outcome.desired != outcome.current:
                    print(f"{outcome.model} {outcome.track} {outcome.version}: {outcome.current} -> "
                          f"{outcome.desired} ({outcome.reason}: {outcome.message})", flush=True)
        except MeshserveError as error:  # a model removed or busy, Prometheus restarting
            print(f"sync failed: {error}", flush=True)
        time.sleep(sync_period_s)


if __name__ == "__main__":
    main(Path(sys.argv[1]), float(sys.argv[2]))
