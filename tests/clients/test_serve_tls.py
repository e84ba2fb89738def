"""`exwb serve`'s TLS as a user meets it: the CA kept in the state dir across restarts (with the
signing key, so tokens outlive a restart), a certificate of the user's own, and clear errors."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.core.endpoints import Endpoints
from mockservers.runtime import spawn_serve


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)


def token(ep: Endpoints) -> str:
    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": ep.client_id,
            "client_secret": ep.client_secret,
            "scope": "https://graph.microsoft.com/.default",
        }
    ).encode()
    ctx = ssl.create_default_context(cafile=ep.ca_file)
    with urllib.request.urlopen(ep.https_token_url, data=form, context=ctx) as r:
        return json.loads(r.read())["access_token"]


def users_status(ep: Endpoints, tok: str) -> int:
    ctx = ssl.create_default_context(cafile=ep.ca_file)
    req = urllib.request.Request(
        f"{ep.https_graph_url}/v1.0/users?$top=1", headers={"Authorization": f"Bearer {tok}"}
    )
    try:
        with urllib.request.urlopen(req, context=ctx) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def presented_certificate(host: str, port: int) -> x509.Certificate:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=30) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der)


def test_the_state_dir_keeps_the_ca_and_the_signing_key(tmp_path):
    state, path = tmp_path / "state", tmp_path / "ep.json"
    proc = spawn_serve(path, "-n", "30", "--seed", "4", "--state-dir", str(state), timeout=120)
    try:
        ep = Endpoints.read(path)
        assert Path(ep.ca_file).parent == state / "pki"
        ca = Path(ep.ca_file).read_bytes()
        tok = token(ep)
        assert users_status(ep, tok) == 200
        # The key files are the user's only: mode 0600.
        assert (state / "pki" / "ca-key.pem").stat().st_mode & 0o077 == 0
        assert (state / "pki" / "server-key.pem").stat().st_mode & 0o077 == 0
    finally:
        stop(proc)
    proc = spawn_serve(path, "--state-dir", str(state), timeout=120)
    try:
        again = Endpoints.read(path)
        assert Path(again.ca_file).read_bytes() == ca  # the CA a user trusts stays the same
        assert again.client_id == ep.client_id
        assert users_status(again, tok) == 200  # a token from before the restart still works
    finally:
        stop(proc)


def _self_signed(tmp_path: Path) -> tuple[Path, Path, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "my own")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "mine.pem", tmp_path / "mine-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file, cert


def test_a_certificate_of_ones_own_is_served_and_named_as_the_ca(tmp_path):
    cert_file, key_file, cert = _self_signed(tmp_path)
    path = tmp_path / "ep.json"
    proc = spawn_serve(
        path, "-n", "20", "--tls-cert", str(cert_file), "--tls-key", str(key_file), timeout=120
    )
    try:
        ep = Endpoints.read(path)
        assert ep.ca_file == str(cert_file)
        port = int(ep.https_graph_url.rsplit(":", 1)[1])
        assert presented_certificate("127.0.0.1", port) == cert
        assert presented_certificate("127.0.0.1", ep.ldaps_port) == cert
        assert users_status(ep, token(ep)) == 200  # verified against the user's certificate
    finally:
        stop(proc)


def serve_error(*args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "serve", "-n", "5", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stderr


def test_bad_tls_options_are_one_line_errors(tmp_path):
    cert_file, key_file, _ = _self_signed(tmp_path)
    code, err = serve_error("--tls-cert", str(cert_file))
    assert code == 2 and "--tls-cert and --tls-key go together" in err
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    code, err = serve_error("--tls-cert", str(cert_file), "--tls-key", str(garbage))
    assert code == 2 and f"--tls-key {garbage}: not an unencrypted PEM private key" in err
    other = tmp_path / "other"
    other.mkdir()
    _, other_key, _ = _self_signed(other)
    code, err = serve_error("--tls-cert", str(cert_file), "--tls-key", str(other_key))
    assert code == 2 and "does not match the certificate" in err
    code, err = serve_error("--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(key_file))
    assert code == 2 and "missing.pem" in err
    assert "Traceback" not in err
