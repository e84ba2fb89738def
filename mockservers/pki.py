"""The served tenant's local PKI: a CA and a TLS server certificate, Entra's token-signing key,
and the apps' client certificates.

Everything is made with `cryptography` (X.509 builders, not hand-built ASN.1) and kept as PEM
files in one folder, so that a user's tools can trust `ca.pem` (`SSL_CERT_FILE`,
`REQUESTS_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`, `LDAPTLS_CACERT`) and sign client assertions with
`app-<name>.pem`. A folder that already holds valid material is reused, so a state directory
keeps its CA across restarts and a trusted CA stays trusted; a server certificate that does not
cover the hosts asked for, or expires within 30 days, is re-issued from the same CA.

TLS keys are P-256 (fast to make; every client here accepts ECDSA); the token-signing key and
the client certificates are RSA 2048, because Entra signs RS256 and MSAL / azure-identity sign
client assertions with RSA keys only.
"""

from __future__ import annotations

import atexit
import base64
import datetime as dt
import ipaddress
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
CA_NAME = "ca.pem"
CA_KEY_NAME = "ca-key.pem"
SERVER_NAME = "server.pem"  # the leaf, then the CA: the chain a TLS server sends
SERVER_KEY_NAME = "server-key.pem"
SIGNING_NAME = "token-signing.pem"  # key, then its self-signed certificate (Entra's x5c)
APPS = ("admin", "reader")  # apps given a client certificate: app-admin.pem, app-reader.pem
_RENEW_BEFORE = dt.timedelta(days=30)
_CA_YEARS = 10
_SERVER_DAYS = 397  # the CA/Browser Forum's ceiling, which Apple and Chrome enforce


class PkiError(ValueError):
    """Certificate material that cannot be used; one line naming the file."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A private key and its certificate, with the PEM file holding both (key first)."""

    key: PrivateKeyTypes
    cert: x509.Certificate
    path: Path

    @property
    def thumbprint(self) -> str:
        """The SHA-1 thumbprint as Entra's portal shows it (upper-case hex)."""
        return self.cert.fingerprint(hashes.SHA1()).hex().upper()

    @property
    def x5t(self) -> str:
        """The base64url SHA-1 thumbprint (JOSE's `x5t`), Entra's `kid` for its keys."""
        return b64url(self.cert.fingerprint(hashes.SHA1()))

    @property
    def x5t_s256(self) -> str:
        return b64url(self.cert.fingerprint(hashes.SHA256()))

    @property
    def der_b64(self) -> str:
        """The certificate's DER, base64 (JOSE's `x5c` entry, Graph's keyCredentials key)."""
        return base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()


@dataclass(frozen=True, slots=True)
class Pki:
    """The folder's material: what the servers present and what the clients are given."""

    folder: Path
    ca_file: Path  # what clients trust
    server_cert_file: Path  # the chain the TLS servers send
    server_key_file: Path
    signing: KeyPair
    apps: dict[str, KeyPair]  # APPS -> client certificate and key

    def server_pem(self) -> tuple[bytes, bytes]:
        """(certificate chain, key) as PEM, for the TLS listeners."""
        return self.server_cert_file.read_bytes(), self.server_key_file.read_bytes()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_or_create(folder: Path, hosts: Iterable[str] = DEFAULT_HOSTS) -> Pki:
    """The PKI kept in `folder` (made if missing), its server certificate covering `hosts`."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = dt.datetime.now(dt.UTC)
    wanted = _names(hosts)
    ca = _load_pair(folder / CA_KEY_NAME, folder / CA_NAME, now)
    if ca is None:
        ca = _make_ca(folder, now)
        _remove(folder / SERVER_NAME)  # a new CA: the old leaf no longer chains to it
    if not _server_ok(folder, ca, wanted, now):
        _make_server(folder, ca, wanted, now)
    signing = _load_combined(folder / SIGNING_NAME, now) or _make_self_signed(
        folder / SIGNING_NAME, "exwb token signing", now
    )
    apps = {
        name: _load_combined(folder / f"app-{name}.pem", now)
        or _make_self_signed(folder / f"app-{name}.pem", f"exwb-{name}", now)
        for name in APPS
    }
    return Pki(
        folder, folder / CA_NAME, folder / SERVER_NAME, folder / SERVER_KEY_NAME, signing, apps
    )


def with_own_certificate(pki: Pki, cert_file: Path, key_file: Path) -> Pki:
    """`pki` serving the user's own certificate: `--tls-cert` / `--tls-key`. Clients are told to
    trust `cert_file` itself (a self-signed certificate, or a chain ending in the user's CA)."""
    try:
        chain = x509.load_pem_x509_certificates(cert_file.read_bytes())
    except OSError as e:
        raise PkiError(f"--tls-cert {cert_file}: {e.strerror}") from None
    except ValueError:
        raise PkiError(f"--tls-cert {cert_file}: not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except OSError as e:
        raise PkiError(f"--tls-key {key_file}: {e.strerror}") from None
    except (ValueError, TypeError):
        raise PkiError(
            f"--tls-key {key_file}: not an unencrypted PEM private key (hint: openssl pkey -in "
            "KEY -out plain.pem)"
        ) from None
    if chain[0].public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise PkiError(f"--tls-key {key_file}: does not match the certificate in {cert_file}")
    return Pki(pki.folder, cert_file, cert_file, key_file, pki.signing, pki.apps)


def twisted_options(pki: Pki) -> Any:
    """The TLS server options (twisted's CertificateOptions) presenting `pki`'s server chain."""
    from twisted.internet import ssl

    chain_pem, key_pem = pki.server_pem()
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except ValueError as e:
        raise PkiError(f"{pki.server_cert_file}: {e}") from None
    # pyOpenSSL takes `cryptography` objects directly (its own X509/PKey are deprecated).
    return ssl.CertificateOptions(
        privateKey=key,  # type: ignore[arg-type]
        certificate=chain[0],  # type: ignore[arg-type]
        extraCertChain=chain[1:],  # type: ignore[arg-type]
    )


_shared_lock = threading.Lock()
_shared: dict[tuple[str, ...], Pki] = {}


def temporary(hosts: Iterable[str] = DEFAULT_HOSTS) -> Pki:
    """A PKI in a new folder removed when the process exits (private keys: none left behind)."""
    folder = Path(tempfile.mkdtemp(prefix="exwb-pki-"))
    atexit.register(shutil.rmtree, folder, True)
    return load_or_create(folder, hosts)


def shared(hosts: Sequence[str] = DEFAULT_HOSTS) -> Pki:
    """One PKI per process for tenants served without a state directory (tests, embedded runs):
    RSA keys cost about 30 ms each, and one CA is what a test process's clients trust."""
    key = tuple(sorted(_names(hosts)))
    with _shared_lock:
        if key not in _shared:
            _shared[key] = temporary(hosts)
        return _shared[key]


# ------------------------------------------------------------------ making
def _names(hosts: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys([*DEFAULT_HOSTS, *hosts]))
    return [h for h in names if h and h not in ("0.0.0.0", "::")]  # wildcards name no host


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(general)


def _make_ca(folder: Path, now: dt.datetime) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "exwb-harness local CA")])
    cert = (
        _builder(name, name, key, now, 365 * _CA_YEARS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(folder / CA_KEY_NAME, _key_pem(key))
    _write(folder / CA_NAME, _cert_pem(cert), private=False)
    return KeyPair(key, cert, folder / CA_NAME)


def _make_server(folder: Path, ca: KeyPair, names: Sequence[str], now: dt.datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_key = ca.key
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (
        _builder(subject, ca.cert.subject, key, now, _SERVER_DAYS)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(folder / SERVER_KEY_NAME, _key_pem(key))
    _write(folder / SERVER_NAME, _cert_pem(cert) + _cert_pem(ca.cert), private=False)


def _make_self_signed(path: Path, common_name: str, now: dt.datetime) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = _builder(name, name, key, now, 730).sign(key, hashes.SHA256())
    _write(path, _key_pem(key) + _cert_pem(cert))
    return KeyPair(key, cert, path)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    now: dt.datetime,
    days: int,
) -> x509.CertificateBuilder:
    """A certificate for `key`'s public half, valid from 5 minutes ago (clock skew) for `days`."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _usage(cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# ------------------------------------------------------------------ reusing
def _load_pair(key_path: Path, cert_path: Path, now: dt.datetime) -> KeyPair | None:
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError, TypeError):
        return None
    return KeyPair(key, cert, cert_path) if _fresh(cert, key, now) else None


def _load_combined(path: Path, now: dt.datetime) -> KeyPair | None:
    try:
        data = path.read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
        cert = x509.load_pem_x509_certificate(data)
    except (OSError, ValueError, TypeError):
        return None
    return KeyPair(key, cert, path) if _fresh(cert, key, now) else None


def _fresh(cert: x509.Certificate, key: PrivateKeyTypes, now: dt.datetime) -> bool:
    same_key = _spki(cert.public_key()) == _spki(key.public_key())
    return same_key and cert.not_valid_after_utc - _RENEW_BEFORE > now


def _spki(public: object) -> bytes:
    return public.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _server_ok(folder: Path, ca: KeyPair, names: Sequence[str], now: dt.datetime) -> bool:
    leaf = _load_pair(folder / SERVER_KEY_NAME, folder / SERVER_NAME, now)
    if leaf is None or leaf.cert.issuer != ca.cert.subject:
        return False
    try:
        leaf.cert.verify_directly_issued_by(ca.cert)
        san = leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    have = {str(n) for n in san.get_values_for_type(x509.DNSName)}
    have |= {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return all(str(_canonical(n)) in have for n in names)


def _canonical(name: str) -> object:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return name


def _key_pem(key: CertificateIssuerPrivateKeyTypes | PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes, private: bool = True) -> None:
    """Atomically, mode 0600 for keys (0644 for certificates): a torn key file is never read."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
