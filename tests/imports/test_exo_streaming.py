"""Large mailbox exports are streamed: memory stays far below the file's size, and records
cut across read chunks come out whole."""

from __future__ import annotations

import json
import tracemalloc
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.tenant.imports import pstext
from harness.tenant.imports.exo import read_mailboxes
from harness.tenant.imports.graph import read_graph_users
from harness.tenant.imports.records import ExportError
from harness.tenant.imports.textfile import open_text

SAMPLES = Path(__file__).parent / "samples" / "cloud"
MIB = 1 << 20


def mailbox(i: int) -> dict[str, object]:
    """One Get-Mailbox record as ConvertTo-Json -Depth 4 writes it, with long custom
    attributes (up to the 1,024 characters Exchange allows: about 10 KB a record, so the test
    spends its time on bytes, not on allocations tracemalloc has to trace)."""
    upn = f"user{i}@contoso.com"
    rec: dict[str, object] = {
        "Guid": str(uuid.UUID(int=i)),
        "ExternalDirectoryObjectId": str(uuid.UUID(int=i + (1 << 64))),
        "UserPrincipalName": upn,
        "Alias": f"user{i}",
        "DisplayName": f"User {i}",
        "PrimarySmtpAddress": upn,
        "EmailAddresses": [f"SMTP:{upn}", f"smtp:user{i}@contoso.mail.onmicrosoft.com"],
        "RecipientTypeDetails": 2147483648,
        "IsDirSynced": True,
        "IsExchangeCloudManaged": i % 2 == 0,
        "WhenChanged": f"/Date({1700000000000 + i})/",
    }
    rec.update({f"CustomAttribute{k}": f"{k} of {i} ".ljust(64 * k, "x") for k in range(1, 16)})
    rec.update({f"ExtensionCustomAttribute{k}": [f"x{k}"] for k in range(1, 6)})
    return rec


@pytest.fixture(scope="module")
def big_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A ~50 MB Get-Mailbox JSON array, written record by record."""
    path = tmp_path_factory.mktemp("big") / "mailboxes.json"
    n = 0
    with path.open("w", encoding="utf-8") as f:
        f.write("[\n")
        while f.tell() < 50 * MIB:
            f.write(",\n" if n else "")
            f.write(json.dumps(mailbox(n), indent=4))
            n += 1
        f.write("\n]\n")
    return path, n


def test_50_mb_export_read_in_bounded_memory(big_export: tuple[Path, int]) -> None:
    path, n = big_export
    count = 0
    last = None
    tracemalloc.start()
    try:
        for rec in read_mailboxes(path):
            count += 1
            last = rec
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    assert last is not None and last.props["UserPrincipalName"] == f"user{n - 1}@contoso.com"
    assert last.props["RecipientTypeDetails"] == "RemoteUserMailbox"
    size = path.stat().st_size
    assert size > 45 * MIB
    # The read buffer (1 Mi characters) and one record: a small fraction of the file.
    assert peak < 16 * MIB, f"peak {peak / MIB:.1f} MiB for a {size / MIB:.0f} MiB file"


VALID = [
    "exo-ps7.json",
    "exo-single.json",
    "exo-lines.jsonl",
    "exo-ps51-utf16.json",
    "exo-address-objects.json",
]
GRAPH = ["graph-page.json", "graph-pages.json", "graph-page-array.json", "mguser.json"]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_records_cut_across_chunks_read_the_same(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    want = {n: [(r.props, r.origin) for r in read_mailboxes(SAMPLES / n)] for n in VALID}
    want_g = {n: [(r.props, r.origin) for r in read_graph_users(SAMPLES / n)] for n in GRAPH}
    monkeypatch.setattr(pstext, "_CHUNK", chunk)
    for name in VALID:
        assert [(r.props, r.origin) for r in read_mailboxes(SAMPLES / name)] == want[name]
    for name in GRAPH:
        assert [(r.props, r.origin) for r in read_graph_users(SAMPLES / name)] == want_g[name]


def test_a_value_too_long_to_be_a_record_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.json"
    path.write_text('[\n{"Guid": "' + "x" * 5000 + '"}]', encoding="utf-8")
    monkeypatch.setattr(pstext, "MAX_VALUE", 1000)
    monkeypatch.setattr(pstext, "_CHUNK", 100)
    with pytest.raises(ExportError) as e:
        list(read_mailboxes(path))
    assert str(e.value) == (
        f"{path}:2: one JSON value longer than 1,000 characters (hint: export a JSON array of "
        "records (ConvertTo-Json writes one))"
    )


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
records = st.lists(st.dictionaries(st.text(max_size=6), values, max_size=4), max_size=5)


@given(records=records, chunk=st.integers(1, 40), indent=st.sampled_from([None, 0, 2, 4]))
def test_json_records_match_the_standard_decoder(
    tmp_path_factory: pytest.TempPathFactory, records: list, chunk: int, indent: int | None
) -> None:
    """Whatever the layout and wherever the chunks fall, each record is what json.loads gives,
    with the line it starts on."""
    path = tmp_path_factory.mktemp("h") / "r.json"
    parts = [json.dumps(r, indent=indent) for r in records]
    starts = []
    line = 2
    for part in parts:
        starts.append(line)
        line += part.count("\n") + 1
    path.write_text("[\n" + ",\n".join(parts) + "\n]\n", encoding="utf-8")
    old = pstext._CHUNK
    pstext._CHUNK = chunk
    try:
        got = list(pstext.json_records(open_text(path), "record", "records", "hint"))
    finally:
        pstext._CHUNK = old
    assert [v for _, v in got] == records
    assert [line for line, _ in got] == starts
