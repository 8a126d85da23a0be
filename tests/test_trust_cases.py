"""Issue 18's trust boundaries: the table of attacks and careless inputs (tests/support/trust_cases.py), the
secret planted in every input channel, and the cases a table cannot hold (a kill -9, a full disk).

The table by class and by command: `.venv/bin/python -m tests.support.trust_cases`.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.compile import RELEASED
from tests.support.trust_cases import CASES, CLASSES, TrustWorkspace, run_trust_case

ROOT = Path(__file__).resolve().parents[1]
MESHSERVE = [str(Path(sys.executable).parent / "meshserve")]
# every way a secret reaches meshserve; each must have a case that plants it and finds it nowhere
CHANNELS = {"URL user info", "URL query value", "URL bare query key", "URL path parameter", "gRPC target user info",
            "header", "evidence URL", "storage endpoint user info", "storage endpoint query", "storage credentials",
            "token environment variable", "token file", "kubeconfig token", "kubeconfig server user info",
            "kubeconfig server query", "kubeconfig client-key-data", "kubeconfig password"}


@pytest.fixture(scope="module")
def trust_workspace(cli_workspace, tmp_path_factory):
    """The trust cases' workspace, on the model and the benchmark result the issue-13 cases already made."""
    space = TrustWorkspace(tmp_path_factory.mktemp("trust"), Path(cli_workspace.values["model"]),
                           Path(cli_workspace.values["result"]))
    yield space
    space.close()


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{i:03d}-{c.kind.replace(' ', '-')}-{c.command}"
                                                          for i, c in enumerate(CASES)])
def test_trust_case_is_good(trust_workspace, index, tmp_path):
    outcome = run_trust_case(CASES[index], trust_workspace, tmp_path / "case")
    assert outcome.verdict == "good", outcome.describe()


def test_the_table_covers_every_class_and_plants_a_secret_in_every_channel():
    """At least 150 cases over the six classes; the secret-out cases reach every input channel."""
    kinds = {case.kind for case in CASES}
    assert len(CASES) >= 150 and kinds == set(CLASSES)
    assert {case.channel for case in CASES if case.kind == "secret out"} == CHANNELS
    assert min(sum(case.kind == kind for case in CASES) for kind in CLASSES) >= 15


def _private_key(tmp_path: Path) -> bytes:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=meshserve-test",
                    "-days", "1", "-keyout", str(tmp_path / "client.key"), "-out", str(tmp_path / "client.pem")],
                   check=True, capture_output=True)
    return (tmp_path / "client.key").read_bytes()


def test_a_client_key_is_never_on_disk_even_after_kill_9(tmp_path):
    """A kubeconfig with client-key-data, the command killed -9 while it waits on a silent server: the decoded
    key was in no file of the temp directory while it ran, and is in none after."""
    import base64
    import json
    import socket

    key = _private_key(tmp_path)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": f"https://127.0.0.1:{silent.getsockname()[1]}",
                                               "certificate-authority-data": base64.b64encode(
                                                   (tmp_path / "client.pem").read_bytes()).decode()}}],
        "users": [{"name": "u", "user": {"client-key-data": base64.b64encode(key).decode(),
                                         "client-certificate-data": base64.b64encode(
                                             (tmp_path / "client.pem").read_bytes()).decode()}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "MESHSERVE_STATE_DIR": str(tmp_path / "state"),
           "MESHSERVE_REQUEST_TIMEOUT_S": "60"}
    started = time.time() - 1  # the filesystem's clock may round down
    command = subprocess.Popen([*MESHSERVE, "status", "--platform", "kubernetes", "--kubeconfig", str(kubeconfig)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    silent.settimeout(60)
    connection, _ = silent.accept()  # the client is in its TLS handshake: its key is loaded, and it waits
    try:
        time.sleep(0.5)
        assert command.poll() is None
        assert not _files_holding(key.split(b"\n")[1], [scratch, Path("/tmp"), Path("/dev/shm")], tmp_path, started)
    finally:
        command.send_signal(signal.SIGKILL)
        command.wait(timeout=10)
        connection.close()
        silent.close()
    assert command.returncode == -signal.SIGKILL
    assert not _files_holding(key.split(b"\n")[1], [scratch, Path("/tmp"), Path("/dev/shm")], tmp_path, started)


def _files_holding(marker: bytes, roots: list[Path], own: Path, since: float) -> list[str]:
    """Files under `roots` (but `own`, the test's directory) written since `since` that hold `marker`: a file the
    command wrote has a later mtime, so older files (a whole checkout's venv under /tmp) are not read."""
    found = []
    for root in roots:
        for path in root.rglob("*") if root.is_dir() else []:
            try:
                stat = path.stat()
                if path.is_file() and not path.is_relative_to(own) and stat.st_mtime >= since \
                        and stat.st_size < 1 << 20 and marker in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue
    return found


def test_compile_on_a_full_disk_writes_nothing_and_says_so_in_one_line(tmp_path):
    """A file-size limit (what a full disk does to a write: the write fails part-way) during `compile --out`:
    one line naming --out, exit 2, and the directory holds none of the files (not 5 of 7)."""
    out = tmp_path / "compiled"

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    done = subprocess.run([*MESHSERVE, "compile", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          preexec_fn=small_files, timeout=300,
                          env={**os.environ, "MESHSERVE_STATE_DIR": str(tmp_path / "state")})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meshserve compile: error: out: nothing was written"), lines
    assert [p for p in out.rglob("*") if p.is_file()] == []
    assert subprocess.run([*MESHSERVE, "compile", "--out", str(out)], cwd=ROOT, capture_output=True,
                          env={**os.environ, "MESHSERVE_STATE_DIR": str(tmp_path / "state")}).returncode == 0
    written = {p.name for p in out.rglob("*") if p.is_file()}  # the same command with room: every file
    assert set(RELEASED) <= written and len(written) > len(RELEASED)
