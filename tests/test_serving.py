"""`meshserve serve`: KServe's model server with meshserve's model classes, on 127.0.0.1 only."""

import json
import subprocess
import sys
import urllib.error
import urllib.request

import joblib
import pytest

from components.datasets import DatasetOptions, load_dataset
from components.steps.benchmark.core import run_benchmark_step
from pipelines.compile import REPO_ROOT
from tests.support.servers import free_port, wait_for_port


@pytest.fixture(scope="module")
def served(digits_model):
    http_port, grpc_port = free_port(), free_port()
    process = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "serve", str(digits_model), "--name", "digits",
                                "--http-port", str(http_port), "--grpc-port", str(grpc_port)], cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(http_port, timeout=90)
    wait_for_port(grpc_port, timeout=90)
    yield http_port, grpc_port
    process.terminate()
    process.wait(timeout=20)


def post(port, path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def listening_addresses(port):
    """Local addresses with a listening socket on `port`, from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_predictions_match_the_trained_model_on_the_whole_test_split(served, digits_model):
    """v1 (float64 JSON) answers exactly `predict`; v2 with FP32 data answers `predict` of the float32 rows."""
    data = load_dataset("digits", DatasetOptions(seed=0))
    model = joblib.load(digits_model / "model.joblib")
    status, body = post(served[0], "/v1/models/digits:predict", {"instances": data.x_test.tolist()})
    assert status == 200 and len(body["predictions"]) == len(data.y_test) > 300
    assert body["predictions"] == model.predict(data.x_test).tolist()
    rows = data.x_test.astype("float32")
    status, body = post(served[0], "/v2/models/digits/infer", {"inputs": [
        {"name": "input-0", "shape": list(rows.shape), "datatype": "FP32", "data": rows.ravel().tolist()}]})
    assert status == 200 and body["outputs"][0]["data"] == model.predict(rows).tolist()


def test_v2_infer_and_metadata(served):
    row = load_dataset("digits", DatasetOptions(test_limit=1)).x_test[0].tolist()
    status, body = post(served[0], "/v2/models/digits/infer",
                        {"inputs": [{"name": "input-0", "shape": [1, 64], "datatype": "FP32", "data": row}]})
    assert status == 200 and body["outputs"][0]["shape"] == [1] and body["outputs"][0]["datatype"] == "INT64"
    with urllib.request.urlopen(f"http://127.0.0.1:{served[0]}/v2/models/digits", timeout=10) as response:
        assert json.loads(response.read())["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 64]}]


def test_wrong_shape_is_400(served):
    status, body = post(served[0], "/v1/models/digits:predict", {"instances": [[1.0, 2.0]]})
    assert status == 400 and "does not match [-1, 64]" in body["error"]


def test_grpc_v2_under_load(served):
    result = run_benchmark_step(f"127.0.0.1:{served[1]}", protocol="v2-grpc", model="digits", sample="digits",
                                count=200, duration=None, concurrency=4)
    assert result["counts"]["by_status"] == {"OK": 200}


def test_listens_on_loopback_only(served):
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1 in tcp and tcp6 (mapped)
    for port in served:
        addresses = listening_addresses(port)
        assert addresses and addresses <= loopback, addresses


@pytest.mark.parametrize("kind, transports", [("triton", {"http", "grpc"}),
                                              ("kserve", {"rest_v1", "rest_v2", "grpc_v2"})])
def test_real_clients_agree_with_the_model(served, digits_model, kind, transports):
    completed = subprocess.run([sys.executable, "-m", "tests.support.client_checks", kind, str(served[0]),
                                str(served[1]), "digits", "64"], capture_output=True, text=True, timeout=120,
                               cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    expected = joblib.load(digits_model / "model.joblib").predict([[0.0] * 64] * 2).tolist()
    assert set(results) == transports
    assert all(list(map(int, classes)) == expected for classes in results.values()), results


@pytest.mark.slow
@pytest.mark.parametrize("serialization, saved_model", [("tf-savedmodel", "1"), ("triton", "1/model.savedmodel")])
def test_a_tensorflow_model_is_served(tmp_path, serialization, saved_model):
    from components.training import TrainConfig, train_model

    model_dir = train_model(TrainConfig(framework="tensorflow", dataset="iris", epochs=3,
                                        serialization=serialization), tmp_path / "tf").model_dir
    http_port, grpc_port = free_port(), free_port()
    process = subprocess.Popen([sys.executable, "-m", "components.serving", str(model_dir), "--name", "iris-tf",
                                "--http-port", str(http_port), "--grpc-port", str(grpc_port)], cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(http_port, timeout=120)
        data = load_dataset("iris", DatasetOptions(seed=0))
        status, body = post(http_port, "/v1/models/iris-tf:predict", {"instances": data.x_test.tolist()})
        import tensorflow as tf

        signature = tf.saved_model.load(str(model_dir / saved_model)).signatures["serving_default"]
        expected = next(iter(signature(input=tf.constant(data.x_test, tf.float32)).values())).numpy().argmax(axis=1)
        assert status == 200 and body["predictions"] == expected.tolist()
        assert post(http_port, "/v1/models/iris-tf:predict", {"instances": [[1.0]]})[0] == 400
    finally:
        process.terminate()
        process.wait(timeout=30)


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def predictions_counted(port):
    """KServe's Prometheus counter of predict calls for the model, from /metrics."""
    import re

    status, text = get(port, "/metrics")
    assert status == 200
    return sum(float(n) for n in re.findall(r'^request_predict_seconds_count\{[^}]*model_name="digits"[^}]*\} (\S+)$',
                                            text, re.M))


def test_health_readiness_and_metrics_as_kserve_provides(served):
    http_port = served[0]
    assert get(http_port, "/v2/health/live")[0] == 200
    assert get(http_port, "/v2/health/ready")[0] == 200
    assert json.loads(get(http_port, "/v1/models/digits")[1]) == {"name": "digits", "ready": True}
    assert get(http_port, "/v2/models/unknown/ready")[0] == 404
    before = predictions_counted(http_port)
    data = load_dataset("digits", DatasetOptions(seed=0, test_limit=1))
    for _ in range(5):
        assert post(http_port, "/v1/models/digits:predict", {"instances": data.x_test.tolist()})[0] == 200
    assert predictions_counted(http_port) == before + 5


def _v2(shape, datatype, data):
    return {"inputs": [{"name": "input-0", "shape": shape, "datatype": datatype, "data": data}]}


@pytest.mark.parametrize("path, body, says", [
    ("/v2/models/digits/infer", _v2([1, 3], "FP64", [1, 2, 3]), "does not match"),
    ("/v2/models/digits/infer", _v2([1, 64], "INT8", [1000] * 64), "out of bounds"),
    ("/v2/models/digits/infer", {"inputs": []}, "expected 1 input tensor"),
    ("/v2/models/digits/infer", _v2([-1, 64], "FP64", [1.0] * 64), "negative"),
    ("/v2/models/digits/infer", _v2([2, 64], "FP64", [1.0, 2.0]), "cannot reshape"),
    ("/v2/models/digits/infer", _v2([1, 64], "BOGUS", [1.0] * 64), "datatype"),
    ("/v1/models/digits:predict", {"instances": [[1.0, 2.0], [3.0]]}, "inhomogeneous"),
    ("/v1/models/digits:predict", {"instances": "not rows"}, "instances"),
])
def test_a_bad_input_is_a_400_with_the_reason(served, path, body, says):
    status, answer = post(served[0], path, body)
    assert status == 400 and says in answer["error"], answer


def _answer_to(port, head: bytes, chunks=()) -> bytes:
    """Send a request head, then body chunks until the server answers (it may close before taking them all);
    read the answer until the server closes, since the head and the body may arrive apart."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head)
        try:
            for chunk in chunks:
                connection.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while piece := connection.recv(65536):
                answer += piece
        except ConnectionResetError:
            pass
        return answer


def test_a_body_over_the_limit_is_a_413_without_being_read(served):
    from components.serving.model_server import MAX_REQUEST_BYTES

    declared = _answer_to(served[0], b"POST /v1/models/digits:predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                          b"application/json\r\nContent-Length: " + str(50 << 20).encode() + b"\r\n\r\n")
    assert declared.startswith(b"HTTP/1.1 413") and b"request body over" in declared  # no byte of the body sent
    chunk = b"10000\r\n" + b" " * 65536 + b"\r\n"
    streamed = _answer_to(served[0], b"POST /v1/models/digits:predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                          b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                          [chunk] * (MAX_REQUEST_BYTES // 65536 + 8))
    assert streamed.startswith(b"HTTP/1.1 413")
    assert post(served[0], "/v1/models/digits:predict", {"instances": [[0.0] * 64]})[0] == 200


def test_a_skops_model_is_served_with_restricted_loading(tmp_path):
    """skops' format: trained, published as usual, served by the real model server with the same predictions as
    the joblib model of the same seed; a model.skops holding a type skops does not trust is refused."""
    from components.training import TrainConfig, train_model

    skops_dir = train_model(TrainConfig(framework="sklearn", dataset="iris", serialization="skops"),
                            tmp_path / "skops").model_dir
    joblib_dir = train_model(TrainConfig(framework="sklearn", dataset="iris"), tmp_path / "joblib").model_dir
    from components.manifest import read_manifest

    assert read_manifest(skops_dir).format == "skops" and set(read_manifest(skops_dir).files) == {"model.skops"}
    http_port, grpc_port = free_port(), free_port()
    process = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "serve", str(skops_dir), "--name", "iris",
                                "--http-port", str(http_port), "--grpc-port", str(grpc_port)], cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(http_port, timeout=90)
        rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
        status, body = post(http_port, "/v1/models/iris:predict", {"instances": rows})
        assert status == 200 and body["predictions"] == joblib.load(joblib_dir / "model.joblib").predict(rows).tolist()
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_skops_file_with_an_untrusted_type_is_refused(tmp_path):
    import skops.io

    from components.errors import IntegrityError
    from components.manifest import ModelManifest, read_manifest, sha256_file, write_manifest
    from components.serving.models import SklearnModel
    from components.training import TrainConfig, train_model

    model_dir = train_model(TrainConfig(framework="sklearn", dataset="iris", serialization="skops"),
                            tmp_path / "m").model_dir
    skops.io.dump({"payload": subprocess.Popen}, model_dir / "model.skops")  # a type that runs programs
    manifest = read_manifest(model_dir)
    write_manifest(model_dir, ModelManifest(**{**manifest.__dict__,
                                               "files": {"model.skops": sha256_file(model_dir / "model.skops")}}))
    with pytest.raises(IntegrityError, match="holds types skops does not trust: subprocess.Popen"):
        SklearnModel("iris", model_dir).load()
