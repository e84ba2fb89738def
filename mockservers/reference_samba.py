"""A throwaway Samba AD domain controller loaded with a tenant: the project's AD reference.

Samba implements AD's LDAP semantics (schema classes and possible superiors, samldb's
constraints, linked attributes, AD's controls), so it is the reference where OpenLDAP slapd is
not AD. Preparing one costs seconds, so it is done once per tenant and copied for each server:

- `prepare_samba` provisions a domain for the tenant's realm (``samba-tool domain provision``,
  no DNS), extends its schema with Exchange's attributes (`samba_schema`), loads the entries
  offline into sam.ldb with ``ldbadd`` (far faster than LDAP adds, and through the same samldb
  checks), creates the writeback and reader accounts with ``samba-tool user create`` (passwords
  cannot be set over plain LDAP) and delegates to the writeback account, with ACEs on
  ``OU=Corp``, write access to the GA writeback attributes of users and nothing else: least
  privilege as an administrator would grant it.
- `running_samba` copies a prepared domain, points its smb.conf at the copy and at a loopback
  address of its own (Samba's LDAP ports are fixed: 389, 636, 3268, 3269, so each running copy
  needs its own address, 127.0.0.2 and up), starts ``samba -i -M single`` with the LDAP service
  only and stops it and removes the copy on exit.

Samba's tools run under the system Python (/usr/bin/python3), so they are run as programs here,
never imported. Needs Debian's ``samba samba-ad-dc samba-ad-provision samba-dsdb-modules
ldb-tools`` (the schema files come with samba-ad-provision), and root for the ports below 1024.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from harness.core.adschema import BACK_LINKS, DEFAULT_SCHEMA, Syntax
from harness.core.dn import normalize_dn
from harness.core.sid import FIRST_RID, sid_text
from harness.tenant.ldif import entry_text
from harness.tenant.model import Tenant
from harness.tenant.writeback import GA_ATTRIBUTES
from mockservers.directory.acl import Role
from mockservers.directory.samba_schema import schema_extension
from mockservers.directory.seed import seed_directory

TOOLS: Final = ("samba", "samba-tool", "ldbadd", "ldbmodify", "ldbsearch")
SEARCH_PATH: Final = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")
PORTS: Final = (389, 636, 3268, 3269)
START_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 30.0
# The fake DC's name (mockservers/directory/domain.py DC_NAME): clients see the same dnsHostName.
HOST_NAME: Final = "DC01"
# The offline tools load Samba's modules with the process's smb.conf; these options let them
# change the schema (as ``dsdb:schema update allowed`` does for the server).
_SCHEMA_OPTION: Final = "--option=dsdb:schema update allowed=true"
# AD stamps these itself and refuses them from a client, even with the relax control (objectGUID
# is the exception: relax lets a load keep the tenant's GUIDs, which the cloud side refers to).
_STAMPED: Final = frozenset(
    n.casefold()
    for n in (
        "whenCreated", "whenChanged", "uSNCreated", "uSNChanged", "name", "distinguishedName",
        "objectSid", "createTimeStamp", "modifyTimeStamp", "objectCategory", "sAMAccountType",
        "primaryGroupID",
        # A client may write only 0 or -1 (now) to pwdLastSet; Samba refuses any other value,
        # relax control or not (source4/dsdb/samdb/ldb_modules/password_hash.c), and sets it.
        "pwdLastSet",
    )
)  # fmt: skip
# The writeback delegation's container, as in the fake and slapd.
WRITEBACK_OU: Final = "OU=Corp"
MSA_CONTAINER: Final = "CN=Managed Service Accounts"
_USER_CLASS_GUID: Final = "bf967aba-0de6-11d0-a285-00aa003049e2"  # [MS-ADSC] user schemaIDGUID

Entry = tuple[str, list[tuple[str, tuple[str | bytes, ...]]]]


class SambaError(RuntimeError):
    """Samba or one of its tools failed; the message carries the tool's own output."""


def find_tool(name: str) -> str | None:
    """Path of one of Samba's programs, or None."""
    for d in SEARCH_PATH:
        candidate = os.path.join(d, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which(name)


def samba_available() -> bool:
    """True when the Samba AD DC and ldb tools are installed (and provisioning can find its
    schema files, which come with samba-ad-provision)."""
    if any(find_tool(t) is None for t in TOOLS):
        return False
    return any(Path(p).is_dir() for p in ("/usr/share/samba/setup", "/usr/local/samba/share/setup"))


def strong_password() -> str:
    """A random password that meets AD's default complexity rule (three character classes)."""
    alphabet = string.ascii_letters + string.digits
    body = "".join(secrets.choice(alphabet) for _ in range(20))
    return body + secrets.choice(string.ascii_uppercase) + secrets.choice(string.digits) + "a."


def _run(cmd: Sequence[str], *, what: str, stdin: bytes | None = None) -> str:
    proc = subprocess.run(
        list(cmd), input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
    )
    out = proc.stdout.decode("utf-8", "replace")
    # ldbadd and ldbmodify exit 0 when a record after the first fails (measured: "ERR: ...
    # Added 2 records successfully", status 0, the rest of the input unread): their ERR line
    # is the failure.
    if proc.returncode != 0 or re.search(r"(?m)^ERR: ", out):
        tail = out.strip()[-4000:]
        raise SambaError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return out


def _tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        raise SambaError(
            f"{name} is not installed (apt-get install samba samba-ad-dc samba-ad-provision"
            " samba-dsdb-modules ldb-tools)"
        )
    return path


def realm_of(base_dn: str) -> str:
    """``DC=contoso,DC=com`` -> ``CONTOSO.COM``; ValueError for a base that is not all DC=."""
    labels = []
    for rdn in base_dn.split(","):
        key, _, value = rdn.strip().partition("=")
        if key.strip().casefold() != "dc" or not value.strip():
            raise ValueError(f"{base_dn!r} is not a domain naming context (DC=...,DC=...)")
        labels.append(value.strip())
    return ".".join(labels).upper()


@dataclass(frozen=True, slots=True)
class PreparedSamba:
    """A provisioned and loaded domain on disk, not running; `running_samba` serves copies."""

    path: Path
    base_dn: str
    admin_dn: str
    admin_password: str
    service_dn: str
    service_password: str
    reader_dn: str
    reader_password: str


@dataclass(frozen=True, slots=True)
class SambaInfo:
    """Where a running Samba listens and how to bind to it."""

    url: str
    host: str
    port: int
    prepared: PreparedSamba
    pid: int


def _sam(path: Path) -> str:
    return str(path / "private" / "sam.ldb")


def _conf(path: Path) -> str:
    return str(path / "etc" / "smb.conf")


def provision(
    path: Path, base_dn: str, netbios_domain: str, admin_password: str, host: str = "127.0.0.2"
) -> None:
    """``samba-tool domain provision`` of a DC for `base_dn` into `path` (no DNS), then the
    smb.conf settings of a throwaway LDAP-only server."""
    empty = path.parent / f"{path.name}.empty.conf"
    empty.write_text("", encoding="utf-8")
    _run(
        [
            _tool("samba-tool"), "domain", "provision", "-s", str(empty),
            "--server-role=dc", "--dns-backend=NONE", f"--realm={realm_of(base_dn)}",
            f"--domain={netbios_domain}", f"--host-name={HOST_NAME}",
            f"--adminpass={admin_password}", f"--targetdir={path}",
            f"--option=interfaces={host}/8", "--option=bind interfaces only=yes",
        ],
        what="samba-tool domain provision",
    )  # fmt: skip
    empty.unlink()
    _configure(path, path, host)


def _configure(path: Path, provisioned_at: Path, host: str) -> None:
    """Point smb.conf at `path` (a copy of a domain provisioned at `provisioned_at`) and `host`."""
    conf = Path(_conf(path))
    text = conf.read_text(encoding="utf-8")
    text = text.replace(str(provisioned_at), str(path))
    text = re.sub(r"(?m)^\s*interfaces = .*$", f"\tinterfaces = {host}/8", text)
    # provision writes its own `server services` line; options passed to provision for the
    # rest did not stick (measured), so they are written here.
    extra = (
        "\tserver services = ldap\n"
        "\tldap server require strong auth = no\n"
        "\tdsdb:schema update allowed = true\n"
        f"\tpid directory = {path / 'run'}\n"
    )
    text = re.sub(
        r"(?m)^\s*(server services|ldap server require strong auth|"
        r"dsdb:schema update allowed|pid directory) = .*\n",
        "",
        text,
    )
    text = text.replace("[global]\n", "[global]\n" + extra, 1)
    conf.write_text(text, encoding="utf-8")
    (path / "run").mkdir(exist_ok=True)


def _ldb(tool: str, path: Path, ldif: str, *, what: str, relax: bool = False) -> None:
    if not ldif:
        return
    # --nosync: a throwaway domain needs no fsync per transaction.
    cmd = [_tool(tool), "-H", _sam(path), _SCHEMA_OPTION, "--nosync"]
    if relax:
        cmd.append("--relax")
    _run([*cmd, "-i"], what=what, stdin=ldif.encode("utf-8"))


def _schema_update_now(path: Path) -> None:
    _ldb(
        "ldbmodify",
        path,
        "dn:\nchangetype: modify\nadd: schemaUpdateNow\nschemaUpdateNow: 1\n\n",
        what="schemaUpdateNow",
    )


def _search(path: Path, base: str, ldap_filter: str, *attrs: str) -> list[dict[str, list[str]]]:
    """An offline ldbsearch; each entry's values by attribute (``dn`` included)."""
    out = _run(
        [_tool("ldbsearch"), "-H", _sam(path), "-b", base, ldap_filter, *attrs],
        what=f"ldbsearch {ldap_filter}",
    )
    entries: list[dict[str, list[str]]] = []
    for record in out.split("\n\n"):
        current: dict[str, list[str]] = {}
        for line in record.replace("\n ", "").splitlines():
            if not line or line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            current.setdefault(key, []).append(value.strip())
        if "dn" in current:
            entries.append(current)
    return entries


def schema_names(path: Path, base_dn: str) -> frozenset[str]:
    """The casefolded lDAPDisplayNames of the attributes in the domain's schema."""
    found = _search(
        path, f"CN=Schema,CN=Configuration,{base_dn}", "(objectClass=attributeSchema)",
        "lDAPDisplayName",
    )  # fmt: skip
    return frozenset(v.casefold() for e in found for v in e.get("lDAPDisplayName", ()))


def extend_schema(path: Path, base_dn: str) -> None:
    """Add the Exchange attributes and classes the fake knows and Samba lacks."""
    ext = schema_extension(base_dn, schema_names(path, base_dn))
    _ldb("ldbadd", path, ext.attributes, what="adding the Exchange attributes")
    _schema_update_now(path)
    _ldb("ldbadd", path, ext.classes, what="adding the Exchange classes")
    _schema_update_now(path)
    _ldb("ldbmodify", path, ext.class_changes, what="extending mailRecipient")
    _schema_update_now(path)


def _text(name: str, values: tuple[str | bytes, ...]) -> tuple[str | bytes, ...]:
    t = DEFAULT_SCHEMA.get(name)
    if t is not None and t.syntax is Syntax.OCTETS:
        return values
    return tuple(v.decode("utf-8") if isinstance(v, bytes) else v for v in values)


def samba_entries(entries: Iterable[Entry], existing: frozenset[str]) -> Iterator[Entry]:
    """`entries` as Samba accepts them from a client: those it does not already hold
    (`existing`, normalised DNs), without the attributes the DC stamps itself. A well-known
    principal Samba's provisioning lacks (a 2016 built-in group of an older Samba) is left out
    too: loaded without its SID, it would be another principal with a new RID."""
    for dn, attrs in entries:
        if normalize_dn(dn) in existing or _well_known_principal(attrs):
            continue
        kept = [(n, _text(n, v)) for n, v in attrs if n.casefold() not in _STAMPED]
        yield dn, kept


def _well_known_principal(attrs: list[tuple[str, tuple[str | bytes, ...]]]) -> bool:
    """True for an object whose objectSid is not one the RID pool hands out: a built-in
    (S-1-5-32-...) or well-known SID, or a domain RID below FIRST_RID (mockservers/directory/
    domain.py's table)."""
    for name, values in attrs:
        if name.casefold() == "objectsid" and values and isinstance(values[0], bytes):
            text = sid_text(values[0])
            return not text.startswith("S-1-5-21-") or int(text.rsplit("-", 1)[1]) < FIRST_RID
    return False


def existing_dns(path: Path, base_dn: str) -> frozenset[str]:
    """Normalised DNs of every object in the domain's three naming contexts."""
    out: set[str] = set()
    for base in (base_dn, f"CN=Configuration,{base_dn}", f"CN=Schema,CN=Configuration,{base_dn}"):
        for e in _search(path, base, "(objectClass=*)", "dn"):
            out.add(normalize_dn(e["dn"][0]))
    return frozenset(out)


def load_entries(path: Path, entries: Iterable[Entry], *, chunk: int = 5000) -> int:
    """ldbadd `entries` (parents first) with the relax control; returns how many were added."""
    n = 0
    batch: list[str] = []
    for dn, attrs in entries:
        batch.append(entry_text(dn, attrs))
        n += 1
        if len(batch) >= chunk:
            _ldb("ldbadd", path, "".join(batch), what="loading the tenant", relax=True)
            batch = []
    _ldb("ldbadd", path, "".join(batch), what="loading the tenant", relax=True)
    return n


def create_user(path: Path, name: str, password: str, container: str = "") -> None:
    """``samba-tool user create`` (a password set as only the DC itself can over plain LDAP)."""
    cmd = [_tool("samba-tool"), "user", "create", name, password, "-H", _sam(path)]
    cmd += ["-s", _conf(path)]
    if container:
        cmd.append(f"--userou={container}")
    _run(cmd, what=f"samba-tool user create {name}")


def _sid_of(path: Path, base_dn: str, dn: str) -> str:
    found = _search(path, dn, "(objectClass=*)", "objectSid")
    # ldbsearch prints objectSid as text (S-1-5-21-...), its own rendering of the binary value.
    if not found or "objectSid" not in found[0]:
        raise SambaError(f"no objectSid for {dn}")
    return found[0]["objectSid"][0]


def delegate_writeback(
    path: Path, base_dn: str, service_dn: str, attributes: Iterable[str]
) -> None:
    """Allow `service_dn` to write `attributes` of the users below OU=Corp, and nothing else.

    One object ACE per attribute (WP on the attribute's schemaIDGUID, inherited by user
    objects only), as an administrator delegates the writeback in ADUC or with dsacls.
    """
    sid = _sid_of(path, base_dn, service_dn)
    schema = f"CN=Schema,CN=Configuration,{base_dn}"
    wanted = {a.casefold() for a in attributes}
    found = _search(
        path, schema, "(objectClass=attributeSchema)", "lDAPDisplayName", "schemaIDGUID"
    )
    guids = {
        e["lDAPDisplayName"][0].casefold(): e["schemaIDGUID"][0]
        for e in found
        if e.get("lDAPDisplayName") and e.get("schemaIDGUID")
    }
    missing = sorted(wanted - guids.keys())
    if missing:
        raise SambaError(f"attributes not in the schema: {', '.join(missing)}")
    aces = "".join(f"(OA;CIIO;WP;{guids[a]};{_USER_CLASS_GUID};{sid})" for a in sorted(wanted))
    _run(
        [
            _tool("samba-tool"), "dsacl", "set", "-H", _sam(path), "-s", _conf(path),
            f"--objectdn={WRITEBACK_OU},{base_dn}", f"--sddl={aces}",
        ],
        what="samba-tool dsacl set",
    )  # fmt: skip


def prepare_samba(
    path: Path,
    base_dn: str,
    netbios_domain: str,
    entries: Iterable[Entry],
    *,
    admin_password: str | None = None,
    service_password: str | None = None,
    reader_password: str | None = None,
    service_name: str = "provAgentgMSA",
    reader_name: str = "svc-lob-reader",
) -> PreparedSamba:
    """Provision, extend and load a domain at `path` (which must not exist).

    `entries` are the tenant's objects, parents first; those Samba creates itself (the domain
    root, CN=Users, the configuration containers, ...) are skipped, as are the two accounts,
    which are created here with their passwords: the writeback account in CN=Managed Service
    Accounts as a user (Samba cannot give a gMSA a password a test knows), the reader in
    CN=Users.
    """
    admin_password = admin_password or strong_password()
    service_password = service_password or strong_password()
    reader_password = reader_password or strong_password()
    service_dn = f"CN={service_name},{MSA_CONTAINER},{base_dn}"
    reader_dn = f"CN={reader_name},CN=Users,{base_dn}"
    provision(path, base_dn, netbios_domain, admin_password)
    extend_schema(path, base_dn)
    skip = existing_dns(path, base_dn) | {normalize_dn(service_dn), normalize_dn(reader_dn)}
    load_entries(path, samba_entries(entries, skip))
    create_user(path, service_name, service_password, MSA_CONTAINER)
    create_user(path, reader_name, reader_password)
    delegate_writeback(path, base_dn, service_dn, GA_ATTRIBUTES)
    return PreparedSamba(
        path=path,
        base_dn=base_dn,
        admin_dn=f"CN=Administrator,CN=Users,{base_dn}",
        admin_password=admin_password,
        service_dn=service_dn,
        service_password=service_password,
        reader_dn=reader_dn,
        reader_password=reader_password,
    )


def prepare_tenant(tenant: Tenant, path: Path) -> PreparedSamba:
    """`prepare_samba` for a generated tenant: its directory entries and the fake's seed (the
    containers, the Exchange organisation, the system mailboxes and computers), the accounts
    named as the fake names them."""
    seeded = seed_directory(tenant)
    store = seeded.store
    # Samba makes the back links (memberOf) itself and refuses a member naming no object: the
    # groups come last, in load order (the tenant's: members before the groups they are in).
    groups = [e for e in store.entries.values() if "member" in e.attrs]
    grouped = {id(e) for e in groups}
    entries: list[Entry] = [
        (
            e.dn,
            [(name, tuple(values)) for name, values in e.attrs.items() if name not in BACK_LINKS],
        )
        for e in (*(e for e in store.walk() if id(e) not in grouped), *groups)
    ]
    spec = tenant.spec

    def cn(role: Role) -> str:
        return seeded.account(role).dn.split(",", 1)[0].removeprefix("CN=")

    return prepare_samba(
        path,
        spec.base_dn,
        spec.netbios_name,
        entries,
        service_name=cn(Role.WRITEBACK),
        reader_name=cn(Role.READER),
    )


def _address_free(host: str) -> bool:
    for port in PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def _claim(host: str, stack: contextlib.ExitStack) -> bool:
    """Take `host` for this run: an exclusive lock on a file named after it, held until `stack`
    closes. A free port is not enough: another run (a second pytest, an xdist worker) may be
    starting a Samba on the same address, and the readiness probe would reach that one."""
    path = Path(tempfile.gettempdir()) / f"exwb-samba-{host}.lock"
    handle = stack.enter_context(path.open("a"))
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    if not _address_free(host):
        return False
    stack.callback(fcntl.flock, handle, fcntl.LOCK_UN)
    return True


def _addresses() -> Iterator[str]:
    # 127.0.0.1 is left to everything else; the whole of 127/8 is loopback on Linux.
    first = int(ipaddress.IPv4Address("127.0.0.2"))
    for n in range(250):
        yield str(ipaddress.IPv4Address(first + n))


def _wait_ready(proc: subprocess.Popen[bytes], host: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SambaError(f"samba exited with status {proc.returncode}:\n{_log_tail(log)}")
        try:
            with socket.create_connection((host, 389), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SambaError(f"samba did not listen within {START_TIMEOUT:.0f} s:\n{_log_tail(log)}")


def _log_tail(log: Path) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "(no output)"
    return text[-4000:]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def running_samba(prepared: PreparedSamba, *, copy: bool = True) -> Iterator[SambaInfo]:
    """Serve `prepared` (a copy of it unless `copy` is False) on a free loopback address.

    The copy is removed on exit, so each run starts from the prepared state.
    """
    samba = _tool("samba")
    workdir = Path(tempfile.mkdtemp(prefix="exwb-samba-"))
    proc: subprocess.Popen[bytes] | None = None
    claims = contextlib.ExitStack()
    try:
        path = workdir / "dc"
        if copy:
            shutil.copytree(prepared.path, path, symlinks=True)
        else:
            path = prepared.path
        log = workdir / "samba.log"
        for host in _addresses():
            claim = claims.enter_context(contextlib.ExitStack())
            if not _claim(host, claim):
                claim.close()
                continue
            _configure(path, prepared.path, host)
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [samba, "-i", "-M", "single", "-s", _conf(path)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                _wait_ready(proc, host, log)
                break
            except SambaError:
                _stop(proc)
                proc = None
                claim.close()
                if "Address already in use" not in _log_tail(log):
                    raise
        else:
            raise SambaError("no free loopback address for Samba's LDAP ports")
        assert proc is not None
        yield SambaInfo(url=f"ldap://{host}", host=host, port=389, prepared=prepared, pid=proc.pid)
    finally:
        if proc is not None:
            _stop(proc)
        claims.close()
        shutil.rmtree(workdir, ignore_errors=True)
