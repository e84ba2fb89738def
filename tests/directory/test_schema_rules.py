"""AD's schema rules on add and modify, over ldap3: what an object's classes allow and require,
its RDN attribute and parent, unique account names and DN values that name real objects.

Each test runs on the fake, slapd and Samba (tests/conftest.py). slapd's classes come from the
harness and carry none of AD's content, structure or uniqueness rules (ad_only).
"""

from __future__ import annotations

import pytest
from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE

from tests.directory.ldap_clients import connect, is_samba
from tests.directory.test_ldap3_modify import read, remote_user

OU = "OU=Corp,DC=contoso,DC=com"
USER = ["top", "person", "organizationalPerson", "user"]
CONTACT = ["top", "person", "organizationalPerson", "contact"]
OBJECT_CLASS_VIOLATION, NAMING_VIOLATION, NO_SUCH_OBJECT = 65, 64, 32
ENTRY_EXISTS, CONSTRAINT = 68, 19


def refused(conn, code: int) -> None:
    assert conn.result["result"] == code, conn.result


def absent(conn, dn: str) -> None:
    assert not conn.search(dn, "(objectClass=*)", BASE)
    refused(conn, NO_SUCH_OBJECT)


@pytest.mark.ad_only("class content and naming rules")
def test_an_attribute_no_class_allows_is_refused(fresh_directory):
    conn = connect(fresh_directory)
    # sAMAccountName belongs to securityPrincipal, an auxiliary class of user, not of contact.
    assert not conn.add(f"CN=Rule Contact A,{OU}", CONTACT, {"sAMAccountName": "rule-a"})
    refused(conn, OBJECT_CLASS_VIOLATION)
    absent(conn, f"CN=Rule Contact A,{OU}")
    assert conn.add(f"CN=Rule Contact B,{OU}", CONTACT, {"mail": "rule.b@contoso.com"})
    assert not conn.modify(
        f"CN=Rule Contact B,{OU}", {"sAMAccountName": [(MODIFY_REPLACE, ["rule-b"])]}
    )
    refused(conn, OBJECT_CLASS_VIOLATION)
    # What the auxiliary classes allow is allowed: mailRecipient's Exchange attributes on a
    # contact, securityPrincipal's on a user named by its most specific class alone.
    assert conn.modify(
        f"CN=Rule Contact B,{OU}",
        {"targetAddress": [(MODIFY_REPLACE, ["SMTP:rule.b@contoso.mail.onmicrosoft.com"])]},
    ), conn.result
    assert conn.add(f"CN=Rule User C,{OU}", ["user"], {"sAMAccountName": "rule-c"}), conn.result


@pytest.mark.ad_only("class content and naming rules")
@pytest.mark.samba_differs("the first naming check", branches=True)
def test_the_rdn_attribute_is_the_class_s(fresh_directory):
    conn = connect(fresh_directory)
    assert not conn.add(f"OU=Rule User,{OU}", USER)  # a user is named by cn
    refused(conn, NAMING_VIOLATION)
    assert not conn.add(f"CN=Rule OU,{OU}", ["top", "organizationalUnit"])  # an OU by ou
    # Samba checks the missing ou first (objectClassViolation); a naming refusal either way.
    refused(conn, OBJECT_CLASS_VIOLATION if is_samba(fresh_directory) else NAMING_VIOLATION)
    assert conn.add(f"OU=Rule OU,{OU}", ["top", "organizationalUnit"]), conn.result


@pytest.mark.ad_only("class content and naming rules")
def test_the_parent_is_a_possible_superior(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user = remote_user(tenant, 1)
    for rdn, classes in (("CN=Child", USER), ("OU=Child", ["top", "organizationalUnit"])):
        assert not conn.add(f"{rdn},{user.dn}", classes)  # a user holds no users, no OUs
        refused(conn, NAMING_VIOLATION)
    # A user goes in an OU or a container (possSuperiors inherited from organizationalPerson).
    assert conn.add("CN=Rule In Users,CN=Users,DC=contoso,DC=com", USER), conn.result
    assert conn.add(f"CN=Rule Group Child,{OU}", ["top", "group"]), conn.result


@pytest.mark.ad_only("class content and naming rules")
@pytest.mark.samba_differs("user to inetOrgPerson", branches=True)
def test_objectclass_values_name_one_structural_class(fresh_directory, tenant):
    conn = connect(fresh_directory)
    # Only an auxiliary class: unwillingToPerform; two unrelated structural classes:
    # objectClassViolation (Samba's ldap.py test_objectclasses, written to pass on Windows).
    assert not conn.add(f"CN=Rule Aux,{OU}", ["top", "mailRecipient"])
    refused(conn, 53)
    assert not conn.add(f"CN=Rule Two,{OU}", ["top", "person", "container"])
    refused(conn, OBJECT_CLASS_VIOLATION)
    assert conn.add(f"CN=Rule Contact D,{OU}", CONTACT), conn.result
    # The structural class of an object cannot change ([MS-ADTS] 3.1.1.5.3.5) ...
    assert not conn.modify(f"CN=Rule Contact D,{OU}", {"objectClass": [(MODIFY_REPLACE, USER)]})
    refused(conn, OBJECT_CLASS_VIOLATION)
    # ... except a user into an inetOrgPerson and back, which the same section allows.
    user = remote_user(tenant, 3)
    conn.modify(user.dn, {"objectClass": [(MODIFY_ADD, ["inetOrgPerson"])]})
    refused(conn, OBJECT_CLASS_VIOLATION if is_samba(fresh_directory) else 0)


@pytest.mark.ad_only("class content and naming rules")
def test_a_rename_keeps_the_naming_rules(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user, other = remote_user(tenant, 1), remote_user(tenant, 2)
    # To an RDN attribute other than rDNAttID: unwillingToPerform (Samba's test_rename and
    # test_rdn_name, written to pass on Windows); under a user: namingViolation.
    assert not conn.modify_dn(user.dn, "OU=Renamed")
    refused(conn, 53)
    assert not conn.modify_dn(user.dn, user.dn.split(",", 1)[0], new_superior=other.dn)
    refused(conn, NAMING_VIOLATION)
    assert conn.modify_dn(
        user.dn, "CN=Rule Renamed", new_superior=f"CN=Users,{tenant.spec.base_dn}"
    )


@pytest.mark.ad_only("class content and naming rules")
@pytest.mark.samba_differs("removing an account's required attribute", branches=True)
def test_required_attributes_are_kept(fresh_directory, tenant):
    conn = connect(fresh_directory)
    # AD fills in what a principal lacks: a global security group, a generated account name.
    assert conn.add(f"CN=Rule Group E,{OU}", ["top", "group"]), conn.result
    got = read(conn, f"CN=Rule Group E,{OU}", "groupType", "sAMAccountName", "sAMAccountType")
    assert got["groupType"] == [b"-2147483646"]
    assert got["sAMAccountType"] == [b"268435456"]
    assert got["sAMAccountName"][0].startswith(b"$")
    assert conn.add(f"CN=Rule User F,{OU}", USER), conn.result
    assert read(conn, f"CN=Rule User F,{OU}", "sAMAccountName")["sAMAccountName"][0]
    # Removing a mustContain attribute is refused (Samba: unwillingToPerform, its samldb's).
    user = remote_user(tenant, 2)
    assert not conn.modify(user.dn, {"sAMAccountName": [(MODIFY_DELETE, [])]})
    refused(conn, 53 if is_samba(fresh_directory) else OBJECT_CLASS_VIOLATION)
    assert read(conn, user.dn, "sAMAccountName")["sAMAccountName"] == [
        user.sam_account_name.encode()
    ]


@pytest.mark.ad_only("unique account names")
def test_sam_account_name_is_unique_in_the_domain(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user, other = remote_user(tenant, 1), remote_user(tenant, 2)
    for name in (user.sam_account_name, user.sam_account_name.upper()):  # without case
        assert not conn.add(f"CN=Rule Twin,{OU}", USER, {"sAMAccountName": name})
        refused(conn, ENTRY_EXISTS)
    absent(conn, f"CN=Rule Twin,{OU}")
    assert not conn.modify(
        other.dn, {"sAMAccountName": [(MODIFY_REPLACE, [user.sam_account_name])]}
    )
    refused(conn, ENTRY_EXISTS)
    # Its own name again is no duplicate; a group shares the namespace.
    assert conn.modify(other.dn, {"sAMAccountName": [(MODIFY_REPLACE, [other.sam_account_name])]})
    assert not conn.add(
        f"CN=Rule Group Twin,{OU}", ["top", "group"], {"sAMAccountName": user.sam_account_name}
    )
    refused(conn, ENTRY_EXISTS)


@pytest.mark.ad_only("unique account names")
def test_user_principal_name_is_unique(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user, other = remote_user(tenant, 1), remote_user(tenant, 2)
    upn = user.user_principal_name
    assert not conn.add(
        f"CN=Rule UPN,{OU}", USER, {"sAMAccountName": "rule-upn", "userPrincipalName": upn}
    )
    refused(conn, CONSTRAINT)
    assert not conn.modify(other.dn, {"userPrincipalName": [(MODIFY_REPLACE, [upn])]})
    refused(conn, CONSTRAINT)
    assert read(conn, other.dn, "userPrincipalName")["userPrincipalName"] == [
        other.user_principal_name.encode()
    ]


@pytest.mark.ad_only("DN references")
@pytest.mark.samba_differs("a DN value naming no object", branches=True)
def test_a_dn_value_names_an_existing_object(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user, other = remote_user(tenant, 1), remote_user(tenant, 2)
    nobody = f"CN=Nobody Here,{OU}"
    assert not conn.modify(user.dn, {"manager": [(MODIFY_REPLACE, [nobody])]})
    refused(conn, CONSTRAINT if is_samba(fresh_directory) else NO_SUCH_OBJECT)
    assert conn.modify(user.dn, {"manager": [(MODIFY_REPLACE, [other.dn])]}), conn.result
    assert not conn.add(f"CN=Rule Group G,{OU}", ["top", "group"], {"member": nobody})
    refused(conn, NO_SUCH_OBJECT)
    absent(conn, f"CN=Rule Group G,{OU}")
    assert conn.add(f"CN=Rule Group G,{OU}", ["top", "group"], {"member": user.dn}), conn.result
    assert not conn.modify(f"CN=Rule Group G,{OU}", {"member": [(MODIFY_ADD, [nobody])]})
    refused(conn, NO_SUCH_OBJECT)
