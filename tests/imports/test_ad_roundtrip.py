"""The LDIF reader against the project's LDIF writer: arbitrary values, any folding, both
encodings; a generated tenant read back; and a big file read without being held."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from harness.tenant import TenantSpec, generate
from harness.tenant.files import write_tenant
from harness.tenant.imports.ad import read_ad
from harness.tenant.ldif import directory_entries, entry_text

TEXT_NAMES = ("cn", "description", "proxyAddresses", "displayName", "extensionAttribute15", "info")
BINARY_NAMES = ("objectGUID", "mS-DS-ConsistencyGuid", "thumbnailPhoto", "msExchMailboxGuid")
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=120)
entries = st.lists(
    st.tuples(
        text,
        st.dictionaries(st.sampled_from(TEXT_NAMES), st.lists(text, min_size=1, max_size=3)),
        st.dictionaries(
            st.sampled_from(BINARY_NAMES), st.lists(st.binary(max_size=90), min_size=1, max_size=2)
        ),
    ),
    min_size=1,
    max_size=4,
)


def expected(records):
    return [(f"CN={cn}", {**t, **b}) for cn, t, b in records]


@given(records=entries, utf16=st.booleans(), crlf=st.booleans())
def test_writer_to_reader_round_trip(tmp_path_factory, records, utf16, crlf):
    body = "version: 1\n\n" + "".join(
        entry_text(
            f"CN={cn}",
            [(k, tuple(v)) for k, v in t.items()] + [(k, tuple(v)) for k, v in b.items()],
        )
        for cn, t, b in records
    )
    if crlf:
        body = body.replace("\n", "\r\n")
    p = tmp_path_factory.mktemp("rt") / "x.ldif"
    p.write_bytes(b"\xff\xfe" + body.encode("utf-16-le") if utf16 else body.encode())
    assert [(r.dn, r.attrs) for r in read_ad(p)] == expected(records)


safe_text = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\r\n\x00"), max_size=150
).filter(lambda s: not s.startswith((" ", ":", "<")))


@given(
    values=st.lists(safe_text, min_size=1, max_size=5),
    width=st.integers(min_value=2, max_value=100),
    crlf=st.booleans(),
)
def test_any_fold_width_even_inside_a_character(tmp_path_factory, values, width, crlf):
    """Raw UTF-8 values folded every `width` bytes, wherever that falls."""
    eol = b"\r\n" if crlf else b"\n"
    out = [b"dn: CN=x"]
    for v in values:
        raw = f"description: {v}".encode()
        out.append(raw[:width])
        out.extend(b" " + raw[i : i + width] for i in range(width, len(raw), width))
    p = tmp_path_factory.mktemp("fold") / "x.ldif"
    p.write_bytes(eol.join(out) + eol)
    (rec,) = read_ad(p)
    assert rec.attrs == {"description": values}


def test_a_generated_tenant_reads_back(tmp_path):
    tenant = generate(
        TenantSpec(mailboxes=200, seed=7, non_ascii_fraction=0.4, special_cn_fraction=0.3)
    )
    write_tenant(tenant, tmp_path)
    got = [(r.dn, r.attrs) for r in read_ad(tmp_path / "directory.ldif")]
    want = [(dn, {k: list(v) for k, v in attrs}) for dn, attrs in directory_entries(tenant)]
    assert got == want


def test_reading_a_big_export_does_not_hold_it(tmp_path):
    """A child process reads a 25 MB export; its peak RSS grows by far less than that."""
    p = tmp_path / "big.ldif"
    with p.open("w", encoding="utf-8") as f:
        f.write("version: 1\n\n")
        for i in range(60_000):
            f.write(
                entry_text(
                    f"CN=User {i},OU=Users,DC=contoso,DC=com",
                    [
                        ("objectClass", ("top", "person", "organizationalPerson", "user")),
                        ("cn", (f"User {i}",)),
                        ("objectGUID", (i.to_bytes(16, "little"),)),
                        ("proxyAddresses", (f"SMTP:user{i}@contoso.com", f"smtp:u{i}@x.com")),
                        ("description", ("ünïcode " * 8,)),
                    ],
                )
            )
    size = p.stat().st_size
    child = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from harness.tenant.imports.ad import read_ad\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "n = sum(1 for _ in read_ad(Path(sys.argv[1])))\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(n, (after - before) * 1024)\n"
    )
    root = Path(__file__).resolve().parents[2]  # this tree's harness, whatever is installed
    out = subprocess.run(
        [sys.executable, "-c", child, str(p)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    ).stdout.split()
    assert int(out[0]) == 60_000
    assert size > 20_000_000
    assert int(out[1]) < size / 4
