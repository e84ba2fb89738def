"""The docs' LDAP support matrix (mockservers/directory/support.py) says what the server does."""

from __future__ import annotations

import pytest
from ldap3 import BASE, NONE, Connection, Server
from ldaptor import ldapfilter

from harness.core.ldapresult import LdapError, Result
from mockservers import faults
from mockservers.directory import errors
from mockservers.directory.filters import REFUSED_RULES, compile_filter
from mockservers.directory.server import OPERATIONS
from mockservers.directory.store import Store
from mockservers.directory.support import support_matrix_markdown


def _row(markdown: str, first_cell: str) -> str:
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, f"{first_cell}: {rows}"
    return rows[0]


@pytest.mark.fake_only("the matrix describes the fake's server")
def test_names_each_control_and_extension_the_root_dse_announces(directory):
    conn = Connection(Server(directory.endpoints.ldap_url, get_info=NONE))
    assert conn.bind()
    assert conn.search("", "(objectClass=*)", BASE, attributes=["+"]), conn.result
    dse = conn.response[0]["raw_attributes"]
    controls = [v.decode() for v in dse["supportedControl"]]
    extensions = [v.decode() for v in dse["supportedExtension"]]
    assert controls and extensions
    markdown = support_matrix_markdown()
    for oid in controls + extensions:
        _row(markdown, f"`{oid}`")


def test_the_refusals_it_names_are_what_the_server_answers():
    markdown = support_matrix_markdown()
    code = errors.unsupported_critical_extension("x").code
    assert code == Result.UNAVAILABLE_CRITICAL_EXTENSION
    assert f"{code} (UNAVAILABLE_CRITICAL_EXTENSION)" in markdown
    store = Store()
    for oid in REFUSED_RULES:
        f = ldapfilter.parseFilter(f"(memberOf:{oid}:=CN=Admins,DC=contoso,DC=com)")
        with pytest.raises(LdapError) as err:
            compile_filter(f, store.schema, "")
        assert f"refused: {err.value.code} ({Result(err.value.code).name})" in _row(
            markdown, f"`{oid}`"
        )


def test_lists_every_catalogued_error_with_its_text():
    markdown = support_matrix_markdown()
    row = _row(markdown, "`non_leaf`")
    assert "66 (NOT_ALLOWED_ON_NON_LEAF)" in row
    assert errors.non_leaf().message.rstrip("\n") in row
    # A varying part is named by the constructor's parameter.
    assert "Att ({attribute})" in _row(markdown, "`constraint`")


def test_operations_a_fault_may_target_are_those_the_server_answers():
    # mockservers/faults.py sits below the directory and keeps its own list of names.
    answered = tuple(op.name for op in OPERATIONS if op.response_tag is not None)
    assert faults.OPERATIONS["ldap"] == answered
