"""OpenLDAP's own command-line clients (Debian's ldap-utils) against the fake AD and slapd."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess

import pytest

from harness.core.dn import normalize_dn
from tests.directory.ldap_clients import (
    connect,
    dc_own_users,
    is_ad,
    is_samba,
    ndns,
    system_mailbox_dns,
)

if shutil.which("ldapsearch") is None:
    if os.environ.get("CI"):
        raise RuntimeError("ldap-utils must be installed in CI (.ci/run installs it)")
    pytest.skip("ldapsearch not installed (apt-get install ldap-utils)", allow_module_level=True)


def ldap(run, tool: str, *args: str, who: str = "reader", stdin: str | None = None):
    ep = run.endpoints
    creds = {
        "reader": ["-D", ep.reader_dn, "-w", ep.reader_password],
        "writeback": ["-D", ep.bind_dn, "-w", ep.bind_password],
        "admin": ["-D", ep.admin_dn, "-w", ep.admin_password],
        "anonymous": [],
        "bad": ["-D", ep.admin_dn, "-w", "not-the-password"],
    }[who]
    cmd = [tool, "-x", "-H", ep.ldap_url, *creds, *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120)


def dns(output: str) -> list[str]:
    """The DNs in ldapsearch's LDIF: folded lines joined, base64 (``dn::``) decoded."""
    text = output.replace("\n ", "")
    got = []
    for line in text.splitlines():
        if line.startswith("dn:: "):
            got.append(base64.b64decode(line[5:]).decode())
        elif line.startswith("dn: "):
            got.append(line[4:])
    return got


PEOPLE = (
    "(&(objectCategory=CN=Person,CN=Schema,CN=Configuration,DC=contoso,DC=com)(objectClass=user))"
)


def test_paged_search_of_all_users(directory, tenant):
    res = ldap(
        directory,
        "ldapsearch",
        "-LLL",
        "-E",
        "pr=100/noprompt",
        "-b",
        directory.endpoints.base_dn,
        PEOPLE,
        "sAMAccountName",
    )
    assert res.returncode == 0, res.stderr
    # The harness's three accounts, Exchange's system mailboxes and the DC's own accounts (a
    # real DC's Guest and krbtgt) are users too.
    extra = 3 + len(system_mailbox_dns(tenant)) + len(dc_own_users(directory))
    assert res.stdout.count("sAMAccountName: ") == len(tenant.ad_users) + extra


def test_proxy_address_lookup(directory, tenant):
    user = next(u for u in tenant.ad_users if u.mail and u.dn.isascii() and "\\" not in u.dn)
    res = ldap(
        directory,
        "ldapsearch",
        "-LLL",
        "-b",
        directory.endpoints.base_dn,
        f"(proxyAddresses=SMTP:{user.mail})",
        "mail",
    )
    assert res.returncode == 0, res.stderr
    assert ndns(dns(res.stdout)) == ndns([user.dn])
    assert f"mail: {user.mail}" in res.stdout


def test_bitwise_filter(directory, tenant):
    res = ldap(
        directory,
        "ldapsearch",
        "-LLL",
        "-E",
        "pr=500/noprompt",
        "-b",
        directory.endpoints.base_dn,
        PEOPLE.replace("(objectClass=user)", "(userAccountControl:1.2.840.113556.1.4.803:=2)"),
        "1.1",
    )
    assert res.returncode == 0, res.stderr
    disabled = {u.dn for u in tenant.ad_users if u.user_account_control & 2}
    disabled |= set(system_mailbox_dns(tenant))  # Exchange's system mailboxes are disabled
    assert ndns(dns(res.stdout)) - dc_own_users(directory) == ndns(disabled)


@pytest.mark.ad_differs("AD diagnostic messages")
@pytest.mark.samba_differs("diagnostic texts", branches=True)
def test_modify_allowed_and_denied(fresh_directory, tenant):
    user = next(
        u for u in tenant.ad_users if u.target_address and "\\" not in u.dn and u.dn.isascii()
    )
    ok = ldap(
        fresh_directory,
        "ldapmodify",
        who="writeback",
        stdin=f"dn: {user.dn}\nchangetype: modify\nreplace: extensionAttribute4\n"
        "extensionAttribute4: from ldapmodify\n-\n",
    )
    assert ok.returncode == 0, ok.stderr
    conn = connect(fresh_directory)
    conn.search(user.dn, "(objectClass=*)", "BASE", attributes=["extensionAttribute4"])
    assert conn.entries[0].extensionAttribute4.value == "from ldapmodify"
    denied = ldap(
        fresh_directory,
        "ldapmodify",
        who="writeback",
        stdin=f"dn: {user.dn}\nchangetype: modify\nreplace: title\ntitle: Boss\n-\n",
    )
    assert denied.returncode == 50
    assert "Insufficient access" in denied.stderr
    windows_text = is_ad(fresh_directory) and not is_samba(fresh_directory)
    assert ("INSUFF_ACCESS_RIGHTS" in denied.stderr) is windows_text


@pytest.mark.ad_differs("AD diagnostic messages")
def test_bad_bind(directory):
    bad = ldap(directory, "ldapsearch", "-b", directory.endpoints.base_dn, "(cn=*)", who="bad")
    assert bad.returncode == 49
    assert "Invalid credentials" in bad.stderr
    assert ("data 52e" in bad.stderr) is is_ad(directory)


@pytest.mark.ad_differs("anonymous search result code")
@pytest.mark.samba_differs("diagnostic texts", branches=True)
def test_anonymous_denial(directory):
    anon = ldap(
        directory, "ldapsearch", "-b", directory.endpoints.base_dn, "(cn=*)", who="anonymous"
    )
    if is_samba(directory):
        assert anon.returncode == 1
        assert "Operation unavailable without authentication" in anon.stdout + anon.stderr
    elif is_ad(directory):
        assert anon.returncode == 1
        assert "successful bind must be completed" in anon.stdout + anon.stderr
    else:
        assert anon.returncode == 50
    assert "dn: " not in anon.stdout


def test_anonymous_root_dse(directory):
    dse = ldap(
        directory,
        "ldapsearch",
        "-LLL",
        "-s",
        "base",
        "-b",
        "",
        "(objectClass=*)",
        "namingContexts",
        who="anonymous",
    )
    assert dse.returncode == 0, dse.stderr
    contexts = [line.split(": ", 1)[1] for line in dse.stdout.splitlines() if ": " in line]
    assert normalize_dn(directory.endpoints.base_dn) in ndns(contexts)
