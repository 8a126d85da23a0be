"""Local processes a state directory started, told apart from every other process on the machine."""

from components.processes.identity import (
    SERVES_ENV,
    STATE_ID_ENV,
    carries,
    process_environment,
    processes_carrying,
    start_time,
    state_identity,
    stop_carrier,
)

__all__ = ["STATE_ID_ENV", "SERVES_ENV", "carries", "process_environment", "processes_carrying", "start_time",
           "state_identity", "stop_carrier"]
