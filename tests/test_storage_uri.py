import pytest

from components.errors import InvalidInputError
from components.storage import StorageUri, parse_storage_uri


@pytest.mark.parametrize("text, expected", [
    ("pvc://my-models-pvc/mnist", StorageUri("pvc", "my-models-pvc", "mnist")),
    ("s3://models/a/b/", StorageUri("s3", "models", "a/b")),
    ("oss://my-bucket", StorageUri("oss", "my-bucket", "")),
])
def test_valid_uris(text, expected):
    assert parse_storage_uri(text) == expected
    assert parse_storage_uri(str(expected)) == expected


@pytest.mark.parametrize("text, message", [
    ("gs://bucket/x", r"^to: unsupported scheme gs://; use one of pvc://, s3://, oss://"),
    ("/local/path", r"^to: '/local/path' is not a storage URI"),
    ("s3://Bad_Bucket/x", r"^to: 'Bad_Bucket' is not a valid bucket name"),
    ("pvc://claim/../etc", r"^to: path '\.\./etc' has empty"),
    ("", r"^to: '' is not a storage URI"),
])
def test_invalid_uris_name_the_field_and_fix(text, message):
    with pytest.raises(InvalidInputError, match=message):
        parse_storage_uri(text)


def test_child_paths():
    assert str(StorageUri("s3", "b", "").child("v1")) == "s3://b/v1"
    assert str(StorageUri("s3", "b", "models").child("v1")) == "s3://b/models/v1"
