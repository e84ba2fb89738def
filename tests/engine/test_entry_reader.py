"""The engine's inline SearchResultEntry decoder agrees with the generic one.

`_EntryReader` walks the BER by hand for speed (the 200,000-user index); these cases are where
a hand walk goes wrong: long-form lengths, names in the server's own case or with options,
unrequested attributes, the anchor, multi-valued and shared values.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.engine.ldapwire import _entry
from harness.engine.target import _EntryReader

WANTED = ["extensionAttribute1", "proxyAddresses", "displayName", "msExchRecipientTypeDetails"]


def tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def entry(dn: str, attrs: list[tuple[str, list[bytes]]]) -> bytes:
    """A SearchResultEntry's content (what follows its APPLICATION 4 header)."""
    body = b"".join(
        tlv(0x30, tlv(0x04, name.encode()) + tlv(0x31, b"".join(tlv(0x04, v) for v in values)))
        for name, values in attrs
    )
    return tlv(0x04, dn.encode()) + tlv(0x30, body)


def decoded(buf: bytes):
    obj = _EntryReader(WANTED)(buf, 0, len(buf))
    return obj.dn, {a: tuple(obj.values[a]) for a in WANTED}, obj.anchor


def test_case_options_long_lengths_and_the_anchor() -> None:
    guid = bytes(range(16))
    long_value = "é" * 700  # 1,400 bytes: a two-byte long-form length
    buf = entry(
        "CN=Ann Smith,OU=Corp,DC=contoso,DC=com",
        [
            ("EXTENSIONATTRIBUTE1", [long_value.encode()]),
            ("proxyAddresses;range=0-1", [b"SMTP:ann@contoso.com", b"smtp:a@contoso.com"]),
            ("description", [b"not requested"]),
            ("mS-DS-ConsistencyGuid", [guid]),
            ("msExchRecipientTypeDetails", [b"2147483648"]),
        ],
    )
    dn, values, anchor = decoded(buf)
    assert dn == "CN=Ann Smith,OU=Corp,DC=contoso,DC=com"
    assert values["extensionAttribute1"] == (long_value,)
    assert values["proxyAddresses"] == ("SMTP:ann@contoso.com", "smtp:a@contoso.com")
    assert values["displayName"] == ()
    assert values["msExchRecipientTypeDetails"] == ("2147483648",)
    assert anchor == base64.b64encode(guid).decode()


def test_a_truncated_entry_is_an_error_not_a_wrong_object() -> None:
    buf = entry("CN=x,DC=c", [("displayName", [b"x" * 300])])
    with pytest.raises(Exception):  # noqa: B017 - BERError or IndexError: never a silent object
        obj = _EntryReader(WANTED)(buf[:-5], 0, len(buf) - 5)
        assert obj.values["displayName"] == ("x" * 300,)


def base(name: str) -> str:
    """An attribute's name without options, for comparing spellings."""
    return name.split(";", 1)[0].casefold()


names = st.sampled_from([*WANTED, "DISPLAYNAME", "description", "proxyaddresses;range=0-*"])
values = st.lists(st.binary(max_size=300).map(lambda b: b.hex().encode()), min_size=1, max_size=4)


@given(
    dn=st.text(min_size=1, max_size=200).map(lambda t: f"CN={t},DC=c"),
    attrs=st.lists(st.tuples(names, values), max_size=6),
)
def test_agrees_with_the_generic_decoder(dn: str, attrs: list[tuple[str, list[bytes]]]) -> None:
    attrs = list({base(name): (name, vals) for name, vals in attrs}.values())
    buf = entry(dn, attrs)
    got_dn, got, _ = decoded(buf)
    ref_dn, ref = _entry(buf, 0, len(buf))
    assert got_dn == ref_dn == dn
    for name, raw in ref.items():
        key = next((w for w in WANTED if w.casefold() == base(name)), None)
        if key is not None:
            assert got[key] == tuple(v.decode() for v in raw)
