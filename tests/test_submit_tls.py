"""`meshserve submit` verifies TLS: against an HTTPS recording server on 127.0.0.1 whose certificate a private CA
(made here) signed, the default refuses before any request reaches it, `--ca-file` trusts the CA, and
`--insecure` skips the check and warns."""

from __future__ import annotations

import datetime
import ipaddress
import ssl

import pytest

from pipelines.cli import main
from tests.support.recording_server import start_recording_server

TOKEN = "t0ken-for-tls-tests"


def _certificate(subject: str, key, issuer=None, issuer_key=None, ca: bool = False):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        builder = builder.add_extension(x509.SubjectAlternativeName([loopback]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory):
    """A CA's PEM file, and a server context presenting a certificate it signed for 127.0.0.1."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    root = tmp_path_factory.mktemp("tls")
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("meshserve test CA", ca_key, ca=True)
    server = _certificate("127.0.0.1", server_key, issuer=ca.subject, issuer_key=ca_key)
    (root / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (root / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (root / "server.key").write_bytes(server_key.private_bytes(serialization.Encoding.PEM,
                                                               serialization.PrivateFormat.PKCS8,
                                                               serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(root / "server.pem", root / "server.key")
    return root / "ca.pem", context


@pytest.fixture(params=["kfp", "argo"])
def https_server(request, private_ca, monkeypatch):
    kind = request.param
    monkeypatch.setenv("KFP_TOKEN", TOKEN)
    monkeypatch.setenv("ARGO_TOKEN", TOKEN)
    server = start_recording_server(kind, TOKEN, private_ca[1])
    yield kind, server
    server.stop()


def _submit(kind: str, url: str, *flags: str) -> int:
    return main(["submit", f"--{kind}", url, "-p", "runtime=kserve-raw", *flags])


def test_the_default_refuses_a_certificate_this_machine_does_not_trust(https_server, capsys):
    kind, server = https_server
    assert _submit(kind, server.url) == 2
    err = capsys.readouterr().err
    assert "tls: " in err and "presented a certificate this machine does not trust" in err and "--ca-file" in err
    assert len(err.strip().splitlines()) == 1 and TOKEN not in err
    assert server.requests == []  # refused in the handshake: no request, no token, reached the server


def test_ca_file_trusts_the_private_ca(https_server, private_ca, capsys):
    kind, server = https_server
    assert _submit(kind, server.url, "--ca-file", str(private_ca[0])) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith(f"submitted {'run' if kind == 'kfp' else 'workflow'} ")
    assert server.requests and all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in server.requests)


def test_insecure_submits_and_warns(https_server, capsys):
    kind, server = https_server
    assert _submit(kind, server.url, "--insecure") == 0
    assert "the server's TLS certificate was not verified (--insecure)" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (None, "ca_file: "), ("not a certificate", "holds no PEM certificate"),
])
def test_a_missing_or_unusable_ca_file_is_one_line(https_server, tmp_path, capsys, content, message):
    kind, server = https_server
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_text(content)
    assert _submit(kind, server.url, "--ca-file", str(ca)) == 2
    assert message in capsys.readouterr().err and server.requests == []


def test_ca_file_and_insecure_together_are_refused(https_server, private_ca, capsys):
    kind, server = https_server
    assert _submit(kind, server.url, "--ca-file", str(private_ca[0]), "--insecure") == 2
    assert "insecure: --insecure skips the check that --ca-file configures" in capsys.readouterr().err
