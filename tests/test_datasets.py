import gzip
import shutil

import numpy as np
import pytest

from components.datasets import DatasetOptions, load_dataset
from components.datasets.idx import encode_idx, parse_idx, read_idx
from components.datasets.mnist import MNIST_FILES, fetch_mnist, verify_mnist_dir
from components.errors import IntegrityError, InvalidInputError


@pytest.mark.parametrize("name, features, classes, total", [("iris", 4, 3, 150), ("digits", 64, 10, 1797)])
def test_builtin_datasets_split_stratified(name, features, classes, total):
    data = load_dataset(name, DatasetOptions(seed=3))
    assert data.n_features == features
    assert len(data.class_names) == classes
    assert data.x_train.shape[0] + data.x_test.shape[0] == total
    assert set(np.unique(data.y_test)) == set(range(classes))
    assert data.x_train.dtype == np.float32


def test_fingerprint_pins_the_exact_split():
    first = load_dataset("digits", DatasetOptions(seed=1)).fingerprint()
    assert first == load_dataset("digits", DatasetOptions(seed=1)).fingerprint()
    assert first != load_dataset("digits", DatasetOptions(seed=2)).fingerprint()


def test_unknown_dataset_names_the_choices():
    with pytest.raises(InvalidInputError, match=r"^dataset: unknown dataset 'cifar'; use one of iris, digits, mnist"):
        load_dataset("cifar")


def test_idx_round_trip_plain_and_gzip():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(parse_idx(encode_idx(array), "x"), array)
    assert np.array_equal(parse_idx(gzip.compress(encode_idx(array)), "x"), array)


def test_truncated_idx_is_refused():
    data = encode_idx(np.zeros((5, 28, 28), dtype=np.uint8))
    with pytest.raises(InvalidInputError, match="truncated or corrupted"):
        parse_idx(data[:-10], "train-images")
    with pytest.raises(InvalidInputError, match="not an IDX file"):
        parse_idx(b"PK\x03\x04 not idx", "zip")


def test_missing_mnist_file_says_how_to_fetch(tmp_path):
    with pytest.raises(InvalidInputError, match="meshserve datasets fetch mnist"):
        read_idx(str(tmp_path / "nope.idx3-ubyte"))


def test_real_mnist_fetched_and_verified(mnist_dir):
    verify_mnist_dir(mnist_dir)
    assert fetch_mnist(mnist_dir) == mnist_dir  # valid cache: no second download
    data = load_dataset("mnist", DatasetOptions(seed=0, train_limit=1000, test_limit=500, data_uri=str(mnist_dir)))
    assert data.x_train.shape == (1000, 784) and data.x_test.shape == (500, 784)
    assert data.x_train.max() == 255.0
    counts = np.bincount(data.y_train, minlength=10)
    assert counts.min() > 60  # stratified: every digit present in its share


def test_mnist_subset_is_seeded(mnist_dir):
    options = dict(train_limit=300, test_limit=100, data_uri=str(mnist_dir))
    a = load_dataset("mnist", DatasetOptions(seed=5, **options))
    b = load_dataset("mnist", DatasetOptions(seed=5, **options))
    c = load_dataset("mnist", DatasetOptions(seed=6, **options))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_mnist_read_through_fsspec_uri(mnist_dir):
    data = load_dataset("mnist", DatasetOptions(train_limit=100, test_limit=100, data_uri=f"file://{mnist_dir}"))
    assert data.x_test.shape == (100, 784)


def test_corrupted_mnist_cache_is_refused(mnist_dir, tmp_path):
    copy = tmp_path / "mnist"
    shutil.copytree(mnist_dir, copy)
    name = next(iter(MNIST_FILES))
    raw = bytearray((copy / name).read_bytes())
    raw[5000] ^= 0xFF
    (copy / name).write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match=f"{name} has md5"):
        fetch_mnist(copy)


def test_a_cache_holding_other_files_is_never_replaced(tmp_path):
    """`datasets fetch mnist --cache DIR` replaces only an (incomplete) MNIST cache: a directory holding anything
    else is refused before the download, and kept."""
    cache = tmp_path / "documents"
    cache.mkdir()
    (cache / "thesis.tex").write_text("years of work")
    with pytest.raises(InvalidInputError, match="^cache: .* holds files that are not the MNIST files"):
        fetch_mnist(cache)
    assert (cache / "thesis.tex").read_text() == "years of work"
