"""Reader for the IDX format MNIST ships in (big-endian header, then a dense array).

Files are opened through fsspec, so a local path, `s3://`, `oss://` or `https://` location works alike;
gzip-compressed files (`.gz`) are inflated transparently.
"""

from __future__ import annotations

import gzip
import struct

from components.errors import InvalidInputError

_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes, source: str):
    """Decode IDX bytes into a numpy array; a bad header or truncated body is an input error."""
    import numpy as np

    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise InvalidInputError("data_uri", f"{source} is not an IDX file", "point it at the MNIST IDX files")
    ndim = data[3]
    header_end = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header_end])
    dtype = np.dtype(_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header_end != expected:
        raise InvalidInputError(
            "data_uri", f"{source} is truncated or corrupted ({len(data) - header_end} of {expected} bytes)",
            "fetch it again with `meshserve datasets fetch mnist`",
        )
    return np.frombuffer(data, dtype=dtype, offset=header_end).reshape(shape)


def read_idx(uri: str):
    """Read one IDX file from any fsspec location."""
    import fsspec

    try:
        with fsspec.open(uri, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise InvalidInputError(
            "data_uri", f"{uri} does not exist", "run `meshserve datasets fetch mnist` or pass --data-uri"
        ) from None
    except (NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        raise InvalidInputError("data_uri", f"cannot read {uri} ({exc.strerror or type(exc).__name__})",
                                "pass the directory that holds the MNIST IDX files") from None
    return parse_idx(data, uri)


def encode_idx(array) -> bytes:
    """Encode a uint8 array as IDX bytes (used to write test fixtures and subsets)."""
    import numpy as np

    array = np.ascontiguousarray(array, dtype=">u1")
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()
