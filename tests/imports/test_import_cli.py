"""`exwb import` end to end on small exports written here: LDIF (ldifde) + Get-Mailbox JSON."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from harness.cli import main
from harness.tenant.files import CLOUD_NAME, LDIF_NAME, MANIFEST_NAME, read_cloud_jsonl
from harness.tenant.imports.report import REPORT_JSON, REPORT_MD


def guid(n: int) -> bytes:
    return uuid.UUID(int=n).bytes_le


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ldif(users: int = 2) -> str:
    """What `ldifde -f` writes: changetype: add, base64 binary values, CRLF."""
    records = [
        "dn: DC=contoso,DC=com\nchangetype: add\nobjectClass: top\nobjectClass: domain\n"
        "objectClass: domainDNS\ndc: contoso\n",
        "dn: OU=Staff,DC=contoso,DC=com\nchangetype: add\nobjectClass: top\n"
        "objectClass: organizationalUnit\nou: Staff\nnTSecurityDescriptor:: AQIDBA==\n",
    ]
    for n in range(1, users + 1):
        records.append(
            f"dn: CN=User {n},OU=Staff,DC=contoso,DC=com\nchangetype: add\nobjectClass: top\n"
            "objectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\n"
            f"cn: User {n}\nsAMAccountName: user{n}\nuserPrincipalName: user{n}@contoso.com\n"
            f"objectGUID:: {b64(guid(n))}\nmS-DS-ConsistencyGuid:: {b64(guid(100 + n))}\n"
            f"proxyAddresses: SMTP:user{n}@contoso.com\nuserAccountControl: 512\n"
            f"lastLogon: 133000000000000000\n"
        )
    return "\r\n".join("\n".join(records).split("\n"))


def mailboxes(n: int = 2) -> list[dict[str, object]]:
    """Get-Mailbox | Select-Object ... | ConvertTo-Json -Depth 4."""
    return [
        {
            "Guid": str(uuid.UUID(int=900 + i)),
            "ExternalDirectoryObjectId": str(uuid.UUID(int=500 + i)),
            "UserPrincipalName": f"user{i}@contoso.com",
            "Alias": f"user{i}",
            "DisplayName": f"User {i}",
            "PrimarySmtpAddress": f"user{i}@contoso.com",
            "WindowsEmailAddress": f"user{i}@contoso.com",
            "EmailAddresses": [
                f"SMTP:user{i}@contoso.com",
                f"smtp:user{i}@contoso.mail.onmicrosoft.com",
            ],
            "CustomAttribute1": "Finance",
            "RecipientTypeDetails": "UserMailbox",
            "IsDirSynced": True,
            "IsExchangeCloudManaged": True,
            "HiddenFromAddressListsEnabled": False,
        }
        for i in range(1, n + 1)
    ]


@pytest.fixture
def exports(tmp_path: Path) -> tuple[Path, Path]:
    ad = tmp_path / "users.ldif"
    ad.write_text(ldif(), encoding="utf-8", newline="")
    exo = tmp_path / "mailboxes.json"
    # Windows PowerShell 5.1's Out-File: UTF-16LE with a BOM.
    exo.write_bytes(b"\xff\xfe" + json.dumps(mailboxes(), indent=4).encode("utf-16-le"))
    return ad, exo


def exwb(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run(
        [sys.executable, "-m", "harness", "import", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_import_end_to_end(tmp_path: Path, exports: tuple[Path, Path]) -> None:
    ad, exo = exports
    out = tmp_path / "tenant"
    done = exwb("--ad", ad, "--exo", exo, "--out", out)
    assert done.returncode == 0, done.stderr
    assert "Imported contoso.com" in done.stdout
    assert "joined: graph 0, upn 2, smtp 0" in done.stdout
    assert str(out / REPORT_MD) in done.stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([LDIF_NAME, CLOUD_NAME, MANIFEST_NAME, REPORT_JSON, REPORT_MD])
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["source"] == "import"
    assert manifest["counts"]["ad_users"] == 2 and manifest["counts"]["cloud_managed"] == 2
    by_alias = {m.alias: m for m in read_cloud_jsonl(out / CLOUD_NAME)}
    assert by_alias["user2"].immutable_id == b64(guid(102))
    report = json.loads((out / REPORT_JSON).read_text())
    assert {r["name"] for r in report["ad"]["unknown_attributes"]} == {
        "nTSecurityDescriptor",
        "lastLogon",
    }
    assert [i["encoding"] for i in report["inputs"]] == ["utf-8", "utf-16-le"]
    assert "lastLogon" not in (out / LDIF_NAME).read_text()


def test_bad_input_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, exports: tuple[Path, Path]
) -> None:
    ad, exo = exports
    bad = tmp_path / "bad.ldif"
    bad.write_text(ldif() + "\n\nobjectClass: user\ncn: nobody\n", encoding="utf-8")
    out = tmp_path / "tenant"
    done = exwb("--ad", bad, "--exo", exo, "--out", out)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"exwb import: error: {bad}:")
    assert "dn" in line.lower() and "Traceback" not in done.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ldif", exo.name, ad.name]


def test_zero_mailboxes_is_a_clear_error(
    tmp_path: Path, exports: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ad, _ = exports
    empty = tmp_path / "none.json"
    empty.write_text("[]", encoding="utf-8")
    assert main(["import", "--ad", str(ad), "--exo", str(empty), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert f"{empty}: no mailboxes in the export" in err
    assert not (tmp_path / "t").exists()


def test_ad_only_is_refused(tmp_path: Path, exports: tuple[Path, Path]) -> None:
    ad, _ = exports
    done = exwb("--ad", ad, "--out", tmp_path / "t")
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "an AD export alone is not a tenant" in line and "--exo FILE" in line
    assert not (tmp_path / "t").exists()


def test_non_empty_out_and_bad_format_are_refused(
    tmp_path: Path, exports: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ad, exo = exports
    out = tmp_path / "busy"
    out.mkdir()
    (out / "mine.txt").write_text("x")
    assert main(["import", "--ad", str(ad), "--exo", str(exo), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    args = ["import", "--ad", str(ad), "--exo", str(exo), "--out", str(tmp_path / "t")]
    assert main([*args, "--format", "ad=xml"]) == 2
    assert "ad=xml is not a known format" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--format", "ldif"])
    assert exit_.value.code == 2


def test_writeback_ou_must_exist(
    tmp_path: Path, exports: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ad, exo = exports
    args = ["import", "--ad", str(ad), "--exo", str(exo)]
    wrong = "OU=Nowhere,DC=contoso,DC=com"
    assert main([*args, "--out", str(tmp_path / "a"), "--writeback-ou", wrong]) == 2
    assert f"--writeback-ou: {wrong} is not an OU" in capsys.readouterr().err
    staff = "ou=staff,dc=contoso,dc=com"
    assert main([*args, "--out", str(tmp_path / "b"), "--writeback-ou", staff]) == 0
    manifest = json.loads((tmp_path / "b" / MANIFEST_NAME).read_text())
    assert manifest["writeback_ous"] == ["OU=Staff,DC=contoso,DC=com"]


def test_several_ad_files_make_one_tree(
    tmp_path: Path, exports: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, exo = exports
    records = ldif().split("\r\n\r\n")
    tree, people = tmp_path / "tree.ldif", tmp_path / "people.ldif"
    people.write_text("\r\n\r\n".join(records[2:]), encoding="utf-8", newline="")
    tree.write_text("\r\n\r\n".join(records[:2]) + "\r\n", encoding="utf-8", newline="")
    out = tmp_path / "t"
    # Users first, their OU and the domain root in the second file: parents still come first.
    args = ["import", "--ad", str(people), "--ad", str(tree), "--exo", str(exo), "--out", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    report = json.loads((out / REPORT_JSON).read_text())
    assert report["ad"]["created"] == []
    assert [i["path"] for i in report["inputs"][:2]] == [str(people), str(tree)]
    dns = [line for line in (out / LDIF_NAME).read_text().splitlines() if line.startswith("dn:")]
    assert dns[:3] == [
        "dn: DC=contoso,DC=com",
        "dn: OU=Staff,DC=contoso,DC=com",
        "dn: CN=User 1,OU=Staff,DC=contoso,DC=com",
    ]
