import hashlib
import json

import pytest

from harness.tenant import TenantSpec, generate
from harness.tenant.files import (
    CLOUD_NAME,
    LDIF_NAME,
    MANIFEST_NAME,
    TenantFileError,
    read_cloud_jsonl,
    write_tenant,
)


@pytest.fixture(scope="module")
def tenant():
    return generate(TenantSpec(mailboxes=150, seed=8, non_ascii_fraction=0.5))


def test_writes_three_files_and_a_truthful_manifest(tenant, tmp_path):
    written = write_tenant(tenant, tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted([LDIF_NAME, CLOUD_NAME, MANIFEST_NAME])
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    for name in (LDIF_NAME, CLOUD_NAME):
        data = (out / name).read_bytes()
        assert manifest["files"][name] == {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        assert written[name].sha256 == hashlib.sha256(data).hexdigest()
    assert manifest["counts"]["ad_users"] == len(tenant.ad_users)
    assert manifest["counts"]["cloud_recipients"] == len(tenant.mailboxes)
    assert manifest["spec"]["mailboxes"] == 150
    assert TenantSpec.from_mapping(manifest["spec"]) == tenant.spec


def test_cloud_jsonl_round_trips(tenant, tmp_path):
    write_tenant(tenant, tmp_path)
    back = read_cloud_jsonl(tmp_path / CLOUD_NAME)
    assert [m.to_json() for m in back] == [m.to_json() for m in tenant.mailboxes]
    first = json.loads((tmp_path / CLOUD_NAME).read_text(encoding="utf-8").splitlines()[0])
    assert first["PrimarySmtpAddress"] == first["WindowsEmailAddress"]
    assert len([k for k in first if k.startswith("CustomAttribute")]) == 15


def test_rewrite_replaces_files_whole(tenant, tmp_path):
    write_tenant(tenant, tmp_path)
    small = generate(TenantSpec(mailboxes=3, seed=1))
    write_tenant(small, tmp_path)
    assert len(read_cloud_jsonl(tmp_path / CLOUD_NAME)) == len(small.mailboxes)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_unwritable_target_is_a_clear_error(tenant, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(TenantFileError, match="cannot create output directory"):
        write_tenant(tenant, blocker / "sub")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"id": "x"}', "missing field"),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path, tenant, line, message):
    write_tenant(tenant, tmp_path)
    path = tmp_path / CLOUD_NAME
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(2, line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TenantFileError, match=rf"{CLOUD_NAME}:3: .*{message}"):
        read_cloud_jsonl(path)


def test_wrong_type_in_jsonl_names_the_field(tmp_path, tenant):
    write_tenant(tenant, tmp_path)
    path = tmp_path / CLOUD_NAME
    lines = path.read_text(encoding="utf-8").splitlines()
    rec = json.loads(lines[0])
    rec["IsExchangeCloudManaged"] = "yes"
    lines[0] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TenantFileError, match=r":1: IsExchangeCloudManaged must be true or false"):
        read_cloud_jsonl(path)
