"""Request bodies: given inline, read from a file, or built from a dataset sample in the protocol's shape."""

from __future__ import annotations

from pathlib import Path

from components.benchmark.settings import GRPC_PROTOCOLS
from components.benchmark.targets import grpc_payload, rest_payload
from components.errors import InvalidInputError
from components.inputs import read_bounded_bytes

DEFAULT_INPUT_NAMES = {"tfserving-rest": "input", "tfserving-grpc": "input"}
PAYLOAD_LIMIT = 64 << 20  # far above any model server's body limit (meshserve's own answers 413 over 8 MiB)


def resolve_payload(protocol: str, model: str, *, inline: str = "", file: str = "", sample: str = "",
                    input_name: str = "", datatype: str = "FP32") -> bytes:
    """The body to send: exactly one of inline text, a file, or a sample from a named dataset (or none)."""
    given = [name for name, value in (("payload", inline), ("payload_file", file), ("sample", sample)) if value]
    if len(given) > 1:
        raise InvalidInputError(given[1], f"conflicts with {given[0]}",
                                "pass only one of -payload, -payload-file, --sample")
    if inline:
        return inline.encode()
    if file:
        return _read(file)
    if sample:
        return sample_payload(protocol, model, sample, input_name or DEFAULT_INPUT_NAMES.get(protocol, "input-0"),
                              datatype)
    if protocol != "http":
        raise InvalidInputError("payload", f"{protocol} needs a request body",
                                "pass -payload, -payload-file or --sample DATASET")
    return b""


def _read(file: str) -> bytes:
    data = read_bounded_bytes(Path(file), "payload_file", PAYLOAD_LIMIT)
    if not data:
        raise InvalidInputError("payload_file", f"{file} is empty", "pass a file holding the request body")
    return data


SAMPLE_DATATYPES = ("FP32", "FP64")


def sample_payload(protocol: str, model: str, dataset: str, input_name: str, datatype: str) -> bytes:
    """One row of a dataset's test split, encoded for the protocol (batch of 1)."""
    from components.datasets import DATASET_NAMES, DatasetOptions, load_dataset

    if dataset not in DATASET_NAMES:
        raise InvalidInputError("sample", f"unknown dataset {dataset!r}", f"use one of {', '.join(DATASET_NAMES)}")
    if datatype not in SAMPLE_DATATYPES:
        raise InvalidInputError("datatype", f"{datatype!r} cannot carry a dataset row",
                                f"use one of {', '.join(SAMPLE_DATATYPES)}")
    data = load_dataset(dataset, DatasetOptions(test_limit=1))
    values = [float(v) for v in data.x_test[0]]
    shape = [1, len(values)]
    if protocol in GRPC_PROTOCOLS:
        return grpc_payload(protocol, model, input_name, shape, datatype, values)
    return rest_payload(protocol, input_name, shape, datatype, values)
