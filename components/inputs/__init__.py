"""Reading what a user or another step hands in, within limits: bounded files, strict JSON, YAML without
aliases, values clipped in messages. (Names and labels are checked with `re.fullmatch` wherever they are
validated: `$` in `re.match` accepts a trailing newline.)"""

from components.inputs.documents import (
    REQUEST_TIMEOUT_ENV,
    clipped,
    load_document,
    parse_json,
    read_bounded,
    read_bounded_bytes,
    seconds_from_env,
)
from components.inputs.names import DNS_LABEL

__all__ = ["DNS_LABEL", "REQUEST_TIMEOUT_ENV", "clipped", "load_document", "parse_json", "read_bounded",
           "read_bounded_bytes", "seconds_from_env"]
