import joblib
import numpy as np
import pytest

from components.datasets import DatasetOptions, load_dataset
from components.errors import InvalidInputError
from components.manifest import read_manifest, verify_directory
from components.training import TrainConfig, train_model


@pytest.mark.parametrize("algorithm", ["svm", "logreg", "random_forest"])
def test_sklearn_algorithms_learn_iris(tmp_path, algorithm):
    result = train_model(TrainConfig(framework="sklearn", dataset="iris", algorithm=algorithm), tmp_path / "m")
    assert result.evaluation.accuracy >= 0.85
    assert read_manifest(tmp_path / "m").training["algorithm"] == algorithm


def test_sklearn_model_serves_raw_features(digits_model):
    model = joblib.load(digits_model / "model.joblib")
    data = load_dataset("digits", DatasetOptions(seed=0))
    accuracy = float((model.predict(data.x_test) == data.y_test).mean())
    assert accuracy == pytest.approx(read_manifest(digits_model).metrics["accuracy"], abs=1e-6)


def test_manifest_records_input_data_and_metrics(digits_model):
    manifest = read_manifest(digits_model)
    assert (manifest.framework, manifest.format) == ("sklearn", "joblib")
    assert manifest.input.shape == [-1, 64] and manifest.input.datatype == "FP32"
    assert manifest.dataset["fingerprint"] == load_dataset("digits", DatasetOptions(seed=0)).fingerprint()
    matrix = np.array(manifest.metrics["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == manifest.metrics["n_test"] == manifest.dataset["n_test"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(manifest.metrics["accuracy"], abs=1e-6)
    assert set(manifest.metrics["precision"]) == set(manifest.metrics["recall"]) == {str(d) for d in range(10)}
    assert manifest.training == {"framework": "sklearn", "dataset": "digits", "algorithm": "svm", "seed": 0,
                                 "epochs": 5, "train_limit": None, "test_limit": None, "serialization": "joblib"}


def test_sklearn_training_is_reproducible(digits_model, tmp_path):
    again = train_model(TrainConfig(framework="sklearn", dataset="digits"), tmp_path / "again")
    assert again.manifest.model_digest == read_manifest(digits_model).model_digest


def test_sklearn_mnist_subset(mnist_dir, tmp_path):
    config = TrainConfig(framework="sklearn", dataset="mnist", train_limit=2000, test_limit=1000,
                         data_uri=str(mnist_dir))
    result = train_model(config, tmp_path / "m")
    assert result.evaluation.accuracy > 0.88
    assert result.manifest.input.shape == [-1, 784]


@pytest.mark.slow
def test_tensorflow_mlp_savedmodel_in_tf_serving_layout(tmp_path):
    import tensorflow as tf

    result = train_model(TrainConfig(framework="tensorflow", dataset="digits", epochs=8), tmp_path / "m")
    assert result.evaluation.accuracy > 0.9
    assert (tmp_path / "m" / "1" / "saved_model.pb").is_file()
    verify_directory(tmp_path / "m", result.manifest)
    loaded = tf.saved_model.load(str(tmp_path / "m" / "1"))
    signature = loaded.signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == [result.manifest.input.name]
    data = load_dataset("digits", DatasetOptions(seed=0))
    outputs = signature(**{result.manifest.input.name: tf.constant(data.x_test)})
    predicted = next(iter(outputs.values())).numpy().argmax(axis=1)
    assert float((predicted == data.y_test).mean()) == pytest.approx(result.evaluation.accuracy, abs=1e-6)


@pytest.mark.slow
def test_the_triton_layout_and_its_config_pbtxt_parse_as_tritons_model_config(tmp_path):
    import tensorflow as tf
    from google.protobuf import text_format

    model_config_pb2 = _tritons_model_config()

    result = train_model(TrainConfig(framework="tensorflow", dataset="digits", epochs=2, serialization="triton"),
                         tmp_path / "m")
    saved = tmp_path / "m" / "1" / "model.savedmodel"
    assert (saved / "saved_model.pb").is_file() and not (tmp_path / "m" / "1" / "saved_model.pb").exists()
    assert {"config.pbtxt", "1/model.savedmodel/saved_model.pb"} <= set(result.manifest.files)
    verify_directory(tmp_path / "m", result.manifest)
    config = text_format.Parse((tmp_path / "m" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.platform == "tensorflow_savedmodel" and config.max_batch_size == 0
    signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
    fp32 = model_config_pb2.DataType.Value("TYPE_FP32")
    assert [(t.name, list(t.dims), t.data_type) for t in config.input] == [
        (name, [-1, 64], fp32) for name in signature.structured_input_signature[1]]
    assert [(t.name, list(t.dims), t.data_type) for t in config.output] == [
        (name, [-1, 10], fp32) for name in signature.structured_outputs]
    assert result.manifest.format == "triton" and result.manifest.input.name == config.input[0].name


@pytest.mark.slow
def test_tensorflow_cnn_is_seeded(tmp_path):
    config = TrainConfig(framework="tensorflow", dataset="digits", algorithm="cnn", epochs=2, seed=7)
    first = train_model(config, tmp_path / "a")
    second = train_model(config, tmp_path / "b")
    assert first.evaluation == second.evaluation
    assert first.evaluation.accuracy > 0.8


@pytest.mark.parametrize("config, message", [
    (dict(framework="pytorch", dataset="iris"), r"^framework: unknown framework 'pytorch'; use one of sklearn"),
    (dict(framework="sklearn", dataset="imagenet"), r"^dataset: unknown dataset 'imagenet'"),
    (dict(framework="sklearn", dataset="iris", algorithm="cnn"), r"^algorithm: 'cnn' is not a sklearn algorithm"),
    (dict(framework="tensorflow", dataset="iris", epochs=0), r"^epochs: must be at least 1"),
    (dict(framework="sklearn", dataset="iris", train_limit=-5), r"^train_limit: must not be negative"),
])
def test_bad_configuration_is_refused_before_training(tmp_path, config, message):
    with pytest.raises(InvalidInputError, match=message):
        train_model(TrainConfig(**config), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_cnn_on_tabular_data_is_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="cnn needs image data"):
        train_model(TrainConfig(framework="tensorflow", dataset="iris", algorithm="cnn"), tmp_path / "m")
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.partial").exists()


def test_output_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "blocker").write_text("")
    with pytest.raises(InvalidInputError, match="^out: cannot write"):
        train_model(TrainConfig(framework="sklearn", dataset="iris"), tmp_path / "blocker" / "m")


def test_an_output_directory_holding_the_users_files_is_refused_and_kept(tmp_path):
    """Only an earlier model (its manifest is there) or an empty directory is replaced; anything else is refused
    before training, with every file left as it was, and no staging left beside it."""
    out = tmp_path / "out"
    (out / "notes").mkdir(parents=True)
    (out / "notes" / "plan.txt").write_text("precious")
    with pytest.raises(InvalidInputError, match="^out: .* holds files that are not a model; replacing it would "
                                                "delete them; pass a new or empty directory"):
        train_model(TrainConfig(framework="sklearn", dataset="iris"), out)
    assert (out / "notes" / "plan.txt").read_text() == "precious"
    first = train_model(TrainConfig(framework="sklearn", dataset="iris"), tmp_path / "m")
    again = train_model(TrainConfig(framework="sklearn", dataset="iris", seed=1), tmp_path / "m")
    assert read_manifest(again.model_dir).model_digest != first.manifest.model_digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "out"]


def _tritons_model_config():
    """tritonclient's model_config_pb2 alone: its package would also load tritonclient's inference service protos,
    which kserve's (already loaded in this process) define too (tests/support/client_checks.py)."""
    import importlib.util
    from pathlib import Path

    origin = Path(importlib.util.find_spec("tritonclient").origin).parent / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("tritonclient_model_config_pb2", origin)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_model_directory_is_made_like_any_directory_so_a_server_running_as_another_user_reads_it(tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        model_dir = train_model(TrainConfig(framework="sklearn", dataset="iris"), tmp_path / "m").model_dir
    finally:
        os.umask(previous)
    assert stat.S_IMODE(model_dir.stat().st_mode) == 0o755  # mkdtemp's 0700 kept KServe's uid 1000 out
    assert all(stat.S_IMODE(path.stat().st_mode) & 0o004 for path in model_dir.iterdir())
