"""Writing a tenant to a directory: directory.ldif, cloud.jsonl and a tenant.json manifest.

Every file is written to a temporary name in the target directory and renamed into place once
complete, so an interrupted run never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__
from harness.core.dn import InvalidDN, normalize_dn
from harness.tenant.ldif import ldif_chunks
from harness.tenant.model import CloudMailbox, Tenant
from harness.tenant.names import pools_fingerprint

LDIF_NAME = "directory.ldif"
CLOUD_NAME = "cloud.jsonl"
MANIFEST_NAME = "tenant.json"
FORMAT = "exwb-tenant/1"


class TenantFileError(Exception):
    """A tenant file cannot be written or read; the message names the file (and line)."""


@dataclass(frozen=True, slots=True)
class WrittenFile:
    path: Path
    bytes: int
    sha256: str


def ensure_writable_dir(out: Path) -> None:
    """Create `out` if needed and prove it is writable, or raise TenantFileError."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TenantFileError(f"cannot create output directory {out}: {e.strerror}") from None
    if not out.is_dir():
        raise TenantFileError(f"output path {out} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise TenantFileError(f"output directory {out} is not writable: {e.strerror}") from None


def write_atomic(
    path: Path,
    chunks: Iterable[str],
    on_chunk: Callable[[], None] | None = None,
    encoding: str = "utf-8",
    errors: str = "strict",
) -> WrittenFile:
    """Write text chunks to `path` via a temporary file and an atomic rename.

    `encoding`/`errors` as for `str.encode` (exports: ``utf-16-le``, ``ascii``/``replace``); a
    byte order mark is the caller's first chunk (``"\\ufeff"``), since encoding per chunk
    with ``utf-16`` would repeat it."""
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            for chunk in chunks:
                data = chunk.encode(encoding, errors)
                digest.update(data)
                f.write(data)
                size += len(data)
                if on_chunk:
                    on_chunk()
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise TenantFileError(f"cannot write {path}: {e.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return WrittenFile(path, size, digest.hexdigest())


def cloud_chunks(tenant: Tenant) -> Iterator[str]:
    for mbx in tenant.mailboxes:
        yield json.dumps(mbx.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"


def write_tenant(
    tenant: Tenant, out: Path, on_object: Callable[[], None] | None = None
) -> dict[str, WrittenFile]:
    """Write the tenant's three files into `out`; `on_object` is called once per object written."""
    ensure_writable_dir(out)
    written = {
        LDIF_NAME: write_atomic(out / LDIF_NAME, ldif_chunks(tenant), on_object),
        CLOUD_NAME: write_atomic(out / CLOUD_NAME, cloud_chunks(tenant), on_object),
    }
    manifest = manifest_of(tenant, written)
    written[MANIFEST_NAME] = write_atomic(
        out / MANIFEST_NAME, [json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"]
    )
    return written


def manifest_of(tenant: Tenant, written: dict[str, WrittenFile]) -> dict[str, object]:
    """What was generated, from what, and the files' digests. No timestamps: it is deterministic."""
    spec = tenant.spec
    synced = sum(1 for m in tenant.mailboxes if m.is_dir_synced)
    return {
        "format": FORMAT,
        "generator": {"exwb-harness": __version__, "name_data": pools_fingerprint()},
        "spec": spec.as_dict(),
        "base_dn": spec.base_dn,
        "domains": {
            "primary": spec.domain,
            "secondary": list(spec.extra_domains),
            "onmicrosoft": spec.onmicrosoft_domain,
            "routing": spec.routing_domain,
        },
        "counts": {
            "ad_users": len(tenant.ad_users),
            "ad_groups": len(tenant.groups),
            "organizational_units": len(tenant.ous),
            "cloud_recipients": len(tenant.mailboxes),
            "synced": synced,
            "cloud_only": len(tenant.mailboxes) - synced,
            "cloud_managed": sum(1 for m in tenant.mailboxes if m.is_exchange_cloud_managed),
            "highest_usn": tenant.highest_usn,
        },
        "files": {name: {"bytes": w.bytes, "sha256": w.sha256} for name, w in written.items()},
    }


def read_cloud_jsonl(path: Path) -> list[CloudMailbox]:
    """Read cloud.jsonl back; a bad record raises TenantFileError naming file:line."""
    out: list[CloudMailbox] = []
    try:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    if not isinstance(rec, dict):
                        raise TypeError("a record must be a JSON object")
                    out.append(CloudMailbox.from_json(rec))
                except json.JSONDecodeError as e:
                    raise TenantFileError(f"{path}:{lineno}: invalid JSON: {e.msg}") from None
                except KeyError as e:
                    raise TenantFileError(f"{path}:{lineno}: missing field {e.args[0]}") from None
                except TypeError as e:
                    raise TenantFileError(f"{path}:{lineno}: {e}") from None
    except OSError as e:
        raise TenantFileError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise TenantFileError(f"{path}: not UTF-8 text") from None
    return out


FOLDER_HINT = (
    "a tenant folder holds directory.ldif, cloud.jsonl and tenant.json, as exwb import or exwb "
    "generate writes them"
)


def read_manifest(folder: Path) -> dict[str, Any]:
    """`folder`/tenant.json, checked for what every reader of a tenant folder needs (format,
    base_dn, writeback_ous); a bad one raises TenantFileError naming the file (and line)."""
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise TenantFileError(f"{folder}: not a directory (hint: {FOLDER_HINT})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TenantFileError(f"{path}: no such file (hint: {FOLDER_HINT})") from None
    except OSError as e:
        raise TenantFileError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise TenantFileError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise TenantFileError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise TenantFileError(f'{path}: not a tenant manifest (hint: "format": "{FORMAT}")')
    if not isinstance(manifest.get("base_dn"), str):
        raise TenantFileError(f"{path}: base_dn must be the domain's DN, e.g. DC=contoso,DC=com")
    ous = manifest.get("writeback_ous")
    if ous is not None:
        if not isinstance(ous, list) or not ous or not all(isinstance(o, str) for o in ous):
            raise TenantFileError(
                f"{path}: writeback_ous must be a non-empty list of OU DNs (hint: the OUs where "
                "the writeback account may write; leave it out for the generated default)"
            )
        for ou in ous:
            try:
                normalize_dn(ou)
            except InvalidDN as e:
                raise TenantFileError(f"{path}: writeback_ous: {ou!r}: {e}") from None
    return manifest
