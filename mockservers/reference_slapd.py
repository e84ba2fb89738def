"""A throwaway OpenLDAP slapd loaded with a generated tenant: the project's reference directory.

`running_slapd` writes a slapd.conf and the project schema into a temporary directory, loads
directory.ldif with slapadd (plus the CN=Users and CN=Managed Service Accounts containers and
the writeback service account), starts slapd on a free loopback port and stops it and removes
the directory on exit. Callers that need more (the fake AD's own accounts and containers, AD's
configuration partition as a database of its own) pass the entries and partitions themselves:
see tests/support/backends.py.

It is product code because `exwb bench` measures the same cycle against slapd; the tests import
it through tests/support/slapd.py.

Access control mirrors the writeback delegation: the rootdn ``CN=Administrator,CN=Users,<base>``
may do anything; ``CN=provAgentgMSA,CN=Managed Service Accounts,<base>`` may read everything and
write only the GA writeback attributes of users under ``OU=Corp,<base>`` (anything else is
insufficientAccessRights, 50); other bound users may read; anonymous clients may only bind.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from harness.core.adschema import DEFAULT_SCHEMA
from harness.tenant.ldif import entry_text
from harness.tenant.writeback import GA_ATTRIBUTES
from mockservers.directory.slapd_schema import write_schema_files

SLAPD_CANDIDATES: Final = (
    "/usr/sbin/slapd",
    "/usr/libexec/slapd",
    "/usr/local/libexec/slapd",
    "/usr/local/sbin/slapd",
    "/opt/homebrew/opt/openldap/libexec/slapd",
)
MODULE_DIRS: Final = (
    "/usr/lib/ldap",  # Debian, Ubuntu
    "/usr/lib64/openldap",  # RHEL, Fedora
    "/usr/lib/openldap",  # Arch, Alpine
    "/usr/libexec/openldap",
    "/usr/local/libexec/openldap",
)
# Large enough for 200,000 users and their indexes with room to spare; LMDB maps it lazily, so
# it costs address space, not disk.
MDB_MAXSIZE: Final = 16 * 1024**3
START_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 30.0
SERVICE_SAM: Final = "provAgentgMSA$"
# AD's default MaxPageSize.
MAX_PAGE_SIZE: Final = 1000


def size_limits(max_page_size: int = MAX_PAGE_SIZE) -> str:
    """slapd's limits for AD's MaxPageSize: non-paged searches stop at `max_page_size` entries
    (sizeLimitExceeded, 4), paged searches return pages of at most that size with no limit on
    the total. The rootdn is exempt."""
    n = max_page_size
    return f"size.soft={n} size.hard={n} size.pr={n} size.prtotal=unlimited"


class SlapdError(RuntimeError):
    """slapd or slapadd failed; the message carries slapd's own output."""


@dataclass(frozen=True, slots=True)
class SlapdInfo:
    """Where a running slapd listens and how to bind to it."""

    url: str
    base_dn: str
    admin_dn: str
    admin_password: str
    service_dn: str
    service_password: str
    pid: int


def find_slapd() -> str | None:
    """Path of the slapd binary, or None when OpenLDAP's server is not installed."""
    for candidate in SLAPD_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("slapd")


def slapd_available() -> bool:
    """True when a slapd binary is installed (apt: slapd; the schema files come with it)."""
    return find_slapd() is not None


def ssha(password: str) -> str:
    """An RFC 2307 ``{SSHA}`` hash, which slapd verifies natively."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode("utf-8") + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode("ascii")


def _conf_quote(value: str) -> str:
    # slapd.conf treats backslash and double quote specially inside quoted strings; DNs the
    # helper writes never need them, so refuse rather than guess the escaping.
    if '"' in value or "\\" in value or "\n" in value:
        raise ValueError(f"value not supported in slapd.conf: {value!r}")
    return f'"{value}"'


def _module_lines() -> list[str]:
    for d in MODULE_DIRS:
        if any((Path(d) / f"back_mdb{ext}").exists() for ext in (".so", ".la")):
            return [f"modulepath {d}", "moduleload back_mdb"]
    return []  # back-mdb built in (static), as in some distributions' and source builds


def slapd_conf(
    *,
    workdir: Path,
    schema_files: list[Path],
    base_dn: str,
    admin_dn: str,
    admin_password_hash: str,
    service_dn: str,
    durable: bool,
    partitions: Sequence[str] = (),
    max_page_size: int = MAX_PAGE_SIZE,
) -> str:
    """The slapd.conf text for one throwaway instance rooted at `workdir`.

    Each of `partitions` (suffixes below `base_dn`, such as AD's configuration partition) is a
    database of its own in ``db-<n>``, declared before the domain's so that slapd routes its
    DNs there; like an AD naming context, it is not part of a subtree search of `base_dn`.
    Bound users may read it; only the rootdn may write it.
    """
    writable = ",".join(GA_ATTRIBUTES)
    indexed = [a.name for a in DEFAULT_SCHEMA if a.indexed]
    partition_lines: list[str] = []
    for n, suffix in enumerate(partitions):
        partition_lines += [
            "database mdb",
            f"suffix {_conf_quote(suffix)}",
            f"rootdn {_conf_quote(admin_dn)}",
            f"directory {_conf_quote(str(workdir / f'db-{n}'))}",
            "maxsize 1073741824",
            *([] if durable else ["dbnosync"]),
            "index objectClass eq",
            "access to *",
            "\tby users read",
            "\tby * none",
            "",
        ]
    lines = [
        "# Generated by mockservers/reference_slapd.py for one throwaway instance.",
        *(f"include {_conf_quote(str(p))}" for p in schema_files),
        f"pidfile {_conf_quote(str(workdir / 'slapd.pid'))}",
        f"argsfile {_conf_quote(str(workdir / 'slapd.args'))}",
        *_module_lines(),
        "loglevel none",
        f"sizelimit {size_limits(max_page_size)}",
        # The root DSE and the subschema entry are readable without a bind, as in AD.
        'access to dn.base="" by * read',
        'access to dn.base="cn=Subschema" by * read',
        "",
        *partition_lines,
        "database mdb",
        f"suffix {_conf_quote(base_dn)}",
        f"rootdn {_conf_quote(admin_dn)}",
        f"rootpw {admin_password_hash}",
        f"directory {_conf_quote(str(workdir / 'db'))}",
        f"maxsize {MDB_MAXSIZE}",
        *([] if durable else ["dbnosync"]),
        *(f"index {name} eq" for name in indexed),
        "",
        "access to attrs=userPassword",
        "\tby anonymous auth",
        "\tby * none",
        f"access to dn.subtree={_conf_quote('OU=Corp,' + base_dn)} "
        f"filter=(objectClass=user) attrs={writable}",
        f"\tby dn.exact={_conf_quote(service_dn)} write",
        "\tby users read",
        "\tby * none",
        "access to *",
        "\tby users read",
        "\tby anonymous auth",
        "\tby * none",
        "",
    ]
    return "\n".join(lines)


Entry = tuple[str, list[tuple[str, tuple[str | bytes, ...]]]]


def extra_entries(base_dn: str, service_dn: str, service_password: str) -> list[Entry]:
    """The containers and the writeback service account, which the generator does not write."""
    guid = secrets.token_bytes(16)
    return [
        (f"CN=Users,{base_dn}", [("objectClass", ("top", "container")), ("cn", ("Users",))]),
        (
            f"CN=Managed Service Accounts,{base_dn}",
            [("objectClass", ("top", "container")), ("cn", ("Managed Service Accounts",))],
        ),
        (
            service_dn,
            [
                (
                    "objectClass",
                    (
                        "top",
                        "person",
                        "organizationalPerson",
                        "user",
                        "computer",
                        "msDS-GroupManagedServiceAccount",
                    ),
                ),
                ("cn", ("provAgentgMSA",)),
                ("sAMAccountName", (SERVICE_SAM,)),
                ("userAccountControl", ("4096",)),  # WORKSTATION_TRUST_ACCOUNT, as for a gMSA
                (
                    "objectCategory",
                    (
                        "CN=ms-DS-Group-Managed-Service-Account,CN=Schema,CN=Configuration,"
                        + base_dn,
                    ),
                ),
                ("objectGUID", (guid,)),
                ("userPassword", (ssha(service_password),)),
            ],
        ),
    ]


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no output)"
    text = text.strip()
    return text if len(text) <= limit else "...\n" + text[-limit:]


_VERSION_LINE = re.compile(rb"^version:[ \t]*1[ \t]*\r?$", re.MULTILINE)


def _slapadd(
    slapd: str, conf: Path, ldif_path: Path, workdir: Path, *, quick: bool, suffix: str = ""
) -> None:
    """Load an LDIF file with slapadd, streaming it through stdin; SlapdError on failure.

    slapadd (2.5) rejects RFC 2849's ``version: 1`` line ("attribute type undefined"), which
    ldapadd accepts; it is turned into a comment on the way, keeping line numbers in errors.
    `quick` (-q) skips consistency checks, not schema checks: minutes saved at 200k entries,
    but a failed quick load leaves the database unusable, so small loads that may fail
    (an entry that already exists) run without it. `suffix` picks the database (slapadd's
    default is the first one declared).
    """
    errors = workdir / "slapadd.err"
    cmd = [slapd, "-T", "add", *(["-q"] if quick else []), "-f", str(conf)]
    if suffix:
        cmd += ["-b", suffix]
    with errors.open("wb") as err, ldif_path.open("rb") as src:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=err, stderr=subprocess.STDOUT)
        assert proc.stdin is not None
        try:
            head = src.read(1 << 16)
            first_record_end = head.find(b"\n\n")
            cut = len(head) if first_record_end < 0 else first_record_end
            head = _VERSION_LINE.sub(b"# version: 1", head[:cut], count=1) + head[cut:]
            proc.stdin.write(head)
            shutil.copyfileobj(src, proc.stdin, 1 << 20)
        except BrokenPipeError:
            pass  # slapadd stopped reading: its exit status and output say why
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        rc = proc.wait()
    if rc != 0:
        raise SlapdError(f"slapadd of {ldif_path} failed (exit {rc}):\n{_tail(errors)}")


def _add_entries(
    slapd: str, conf: Path, workdir: Path, entries: list[Entry], *, exist_ok: bool, suffix: str
) -> None:
    """slapadd each entry on its own; with `exist_ok`, an entry already loaded is skipped."""
    for n, (dn, attrs) in enumerate(entries):
        path = workdir / f"extra-{n}.ldif"
        path.write_text(entry_text(dn, attrs), encoding="utf-8")
        try:
            _slapadd(slapd, conf, path, workdir, quick=False, suffix=suffix)
        except SlapdError as e:
            # The generator may one day write this container itself; that is not an error.
            if not (exist_ok and "already exists" in str(e)):
                raise


def _load_entries(
    slapd: str, conf: Path, workdir: Path, entries: Sequence[Entry], *, suffix: str
) -> None:
    """slapadd `entries` (parents first) into the database of `suffix` in one run."""
    if not entries:
        return
    path = workdir / "entries.ldif"
    path.write_text("".join(entry_text(dn, attrs) for dn, attrs in entries), encoding="utf-8")
    _slapadd(slapd, conf, path, workdir, quick=False, suffix=suffix)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(proc: subprocess.Popen[bytes], port: int, workdir: Path) -> None:
    """Wait until this slapd serves `port`.

    slapd writes its pid file only after binding its listeners, so a connection that succeeds
    once the pid file names our process reached our slapd, not another owner of the port.
    """
    log, pidfile = workdir / "slapd.log", workdir / "slapd.pid"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SlapdError(f"slapd exited with status {proc.returncode}:\n{_tail(log)}")
        try:
            started = pidfile.read_text().strip() == str(proc.pid)
        except OSError:
            started = False
        if started:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                pass
        time.sleep(0.05)
    raise SlapdError(
        f"slapd did not accept connections within {START_TIMEOUT:.0f} s:\n{_tail(log)}"
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # slapd closes the database cleanly on SIGTERM
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def running_slapd(
    ldif_path: Path,
    base_dn: str,
    *,
    durable: bool = True,
    admin_password: str | None = None,
    service_password: str | None = None,
    entries: Sequence[Entry] | None = None,
    partitions: Mapping[str, Sequence[Entry]] | None = None,
    max_page_size: int = MAX_PAGE_SIZE,
) -> Iterator[SlapdInfo]:
    """Load `ldif_path` into a fresh slapd for `base_dn`, serve it on loopback, clean up on exit.

    `durable=False` sets ``dbnosync`` (commits are not flushed to disk). Passwords are random
    unless given. `entries` replaces the entries added after the LDIF (by default the
    containers and the service account of `extra_entries`); the caller then provides the
    service account, with its ``userPassword``. `partitions` maps the suffix of each further
    database (below `base_dn`) to its entries, parents first. `max_page_size` plays AD's
    MaxPageSize. Raises SlapdError with slapd's output when slapd is missing, the LDIF does not
    load or the server does not start.
    """
    slapd = find_slapd()
    if slapd is None:
        raise SlapdError("slapd is not installed (apt-get install slapd ldap-utils)")
    if not ldif_path.is_file():
        raise SlapdError(f"LDIF file {ldif_path} not found")
    admin_dn = f"CN=Administrator,CN=Users,{base_dn}"
    service_dn = f"CN=provAgentgMSA,CN=Managed Service Accounts,{base_dn}"
    admin_password = admin_password or secrets.token_urlsafe(18)
    service_password = service_password or secrets.token_urlsafe(18)
    partitions = partitions or {}
    workdir = Path(tempfile.mkdtemp(prefix="exwb-slapd-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        (workdir / "db").mkdir()
        for n in range(len(partitions)):
            (workdir / f"db-{n}").mkdir()
        conf = workdir / "slapd.conf"
        conf.write_text(
            slapd_conf(
                workdir=workdir,
                schema_files=write_schema_files(workdir / "schema"),
                base_dn=base_dn,
                admin_dn=admin_dn,
                admin_password_hash=ssha(admin_password),
                service_dn=service_dn,
                durable=durable,
                partitions=list(partitions),
                max_page_size=max_page_size,
            ),
            encoding="utf-8",
        )
        _slapadd(slapd, conf, ldif_path, workdir, quick=True, suffix=base_dn)
        if entries is None:
            *containers, account = extra_entries(base_dn, service_dn, service_password)
            _add_entries(slapd, conf, workdir, containers, exist_ok=True, suffix=base_dn)
            _add_entries(slapd, conf, workdir, [account], exist_ok=False, suffix=base_dn)
        else:
            _load_entries(slapd, conf, workdir, entries, suffix=base_dn)
        for suffix, content in partitions.items():
            _load_entries(slapd, conf, workdir, content, suffix=suffix)
        log = workdir / "slapd.log"
        for attempt in range(3):
            port = _free_port()
            # No trailing slash in the URL handed out: ldap3 rejects "host:port/".
            url = f"ldap://127.0.0.1:{port}"
            with log.open("wb") as out:
                # -d keeps slapd in the foreground, so the pid is ours to stop; level "none"
                # prints only messages logged whatever the level (startup errors), where -d 0
                # would print nothing at all. No -u/-g: the files belong to whoever runs this,
                # root included.
                proc = subprocess.Popen(
                    [slapd, "-d", "none", "-f", str(conf), "-h", url + "/"],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            try:
                _wait_ready(proc, port, workdir)
                break
            except SlapdError:
                _stop(proc)
                # Another process may have taken the port between probe and bind: retry.
                if attempt == 2 or "Address already in use" not in _tail(log):
                    raise
        assert proc is not None
        yield SlapdInfo(
            url=url,
            base_dn=base_dn,
            admin_dn=admin_dn,
            admin_password=admin_password,
            service_dn=service_dn,
            service_password=service_password,
            pid=proc.pid,
        )
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)
