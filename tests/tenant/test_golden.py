"""Byte-identical output on any machine: a fixed spec must give these exact files.

If this fails after an upgrade, generated tenants changed for every user: a change to the
generator, to Python's `random`, or to Faker's name data (`pools_fingerprint`). Make such a
change on purpose only, update the digests, and say so in the changelog.
"""

import hashlib

from harness.tenant import TenantSpec, generate
from harness.tenant.files import cloud_chunks
from harness.tenant.ldif import ldif_chunks
from harness.tenant.names import pools_fingerprint

NAME_DATA = "47e5aee8971a7c42"
LDIF_SHA256 = "a998c5f11a1dce5f8e80d10e5b1aa219f8734f99d6acc5baacb08a2fc478b300"
JSONL_SHA256 = "e8ab6149107425c0d50b30d562dc92cb0e4e59efda09f856ab60b1af408bcd9f"


def test_name_data_is_the_recorded_one():
    assert pools_fingerprint() == NAME_DATA, (
        "Faker's name lists changed: every generated tenant changes with them. Pin Faker to a "
        "release with the recorded data, or update NAME_DATA and the digests on purpose."
    )


def test_fixed_spec_gives_recorded_bytes():
    t = generate(
        TenantSpec(mailboxes=80, seed=20261127, non_ascii_fraction=0.3, special_cn_fraction=0.3)
    )
    assert hashlib.sha256("".join(ldif_chunks(t)).encode()).hexdigest() == LDIF_SHA256
    assert hashlib.sha256("".join(cloud_chunks(t)).encode()).hexdigest() == JSONL_SHA256
