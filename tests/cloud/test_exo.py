"""The EXO cmdlets: reads, filters, Set-Mailbox policy and its errors (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.tenant import TenantSpec, generate
from harness.tenant.model import CloudMailbox
from mockservers.cloud import exo
from mockservers.cloud.errors import CloudError
from mockservers.cloud.exo import CmdletResult, invoke
from mockservers.cloud.store import CloudStore


@pytest.fixture(scope="module")
def tenant():
    return generate(TenantSpec(mailboxes=200, seed=3))


def run(store: CloudStore, cmdlet: str, can_write: bool = True, **params: Any) -> CmdletResult:
    return invoke(store, cmdlet, params, can_write=can_write)


def fails(store: CloudStore, cmdlet: str, code: str, **params: Any) -> CloudError:
    """Run a cmdlet that must fail with `code`, and check that it changed nothing."""
    seq, before = store.seq, dict(store.mailboxes)
    can_write = params.pop("can_write", True)
    with pytest.raises(CloudError) as err:
        invoke(store, cmdlet, params, can_write=can_write)
    assert err.value.code == code, err.value.message
    assert store.seq == seq and store.mailboxes == before
    return err.value


def pick(store: CloudStore, **want: Any) -> CloudMailbox:
    return next(m for m in store if all(getattr(m, k) == v for k, v in want.items()))


def managed(store: CloudStore) -> CloudMailbox:
    return pick(
        store,
        is_dir_synced=True,
        is_exchange_cloud_managed=True,
        recipient_type_details="UserMailbox",
    )


def unmanaged(store: CloudStore) -> CloudMailbox:
    return pick(
        store,
        is_dir_synced=True,
        is_exchange_cloud_managed=False,
        recipient_type_details="UserMailbox",
    )


def set_mailbox(store: CloudStore, m: CloudMailbox, **params: Any) -> CloudMailbox:
    result = run(store, "Set-Mailbox", Identity=m.id, **params)
    assert list(result.items) == []
    return store.mailboxes[m.id]


def changed(store: CloudStore, seq: int) -> list[frozenset[str]]:
    return [c.properties for c in store.changes_after(seq)]


# ---------------------------------------------------------------------- Get-Mailbox / Recipient
def test_get_mailbox_returns_mailboxes_but_not_mail_users(store):
    result = run(store, "Get-Mailbox")
    assert result.warnings == ()
    kinds = {m.recipient_type_details for m in result.items}
    assert kinds == {"UserMailbox", "SharedMailbox", "RoomMailbox", "EquipmentMailbox"}
    assert len(result.items) == sum(m.recipient_type_details != "MailUser" for m in store)
    everything = run(store, "get-recipient").items
    assert len(everything) == len(store)
    mail_user = pick(store, recipient_type_details="MailUser")
    assert mail_user in everything
    assert run(store, "Get-Recipient").render(mail_user)["RecipientType"] == "MailUser"


def test_items_are_rendered_lazily_with_exchange_identity_properties(store, monkeypatch):
    calls = []
    original = CloudMailbox.to_json
    monkeypatch.setattr(CloudMailbox, "to_json", lambda m: calls.append(m) or original(m))
    result = run(store, "Get-Mailbox", ResultSize="Unlimited")
    assert calls == []  # the HTTP layer renders the page it sends, not the cmdlet
    room = pick(store, recipient_type_details="RoomMailbox")
    rec = result.render(room)
    assert rec["Identity"] == rec["Name"] == rec["Alias"] == room.alias
    assert rec["Guid"] == rec["ExternalDirectoryObjectId"] == rec["id"] == room.id
    assert rec["RecipientType"] == "UserMailbox"
    assert rec["RecipientTypeDetails"] == "RoomMailbox"
    assert rec["PrimarySmtpAddress"] == room.primary_smtp_address
    assert rec["CustomAttribute15"] == "" and rec["ExtensionCustomAttribute5"] == []


def test_result_size_default_is_1000_with_exchange_warning():
    store = CloudStore.from_tenant(generate(TenantSpec(mailboxes=1100, seed=3)))
    result = run(store, "Get-Mailbox")
    assert len(result.items) == 1000
    assert result.warnings[0].startswith("By default only the first 1000 items are returned.")
    assert len(run(store, "Get-Mailbox", ResultSize="unlimited").items) > 1000
    assert run(store, "Get-Mailbox", ResultSize=2000).warnings == ()


def test_result_size_limits_and_warns_when_more_exist(store):
    result = run(store, "Get-Mailbox", ResultSize=10)
    assert len(result.items) == 10
    assert result.warnings == (exo._MORE,)
    assert [m.id for m in result.items] == [m.id for m in run(store, "Get-Mailbox").items[:10]]
    assert len(run(store, "Get-Mailbox", ResultSize="5").items) == 5
    assert run(store, "Get-Mailbox", ResultSize=100_000).warnings == ()


@pytest.mark.parametrize("size", [0, -1, "lots", True, 1.5, [3]])
def test_bad_result_size_is_a_binding_error(store, size):
    err = fails(store, "Get-Mailbox", "ParameterBindingException", ResultSize=size)
    assert "Cannot process argument transformation on parameter 'ResultSize'" in err.message


def test_identity_resolves_id_upn_any_address_and_alias(store):
    m = managed(store)
    secondary = next(a for a in m.email_addresses if a.startswith("smtp:"))
    for identity in (m.id, m.user_principal_name.upper(), secondary, secondary[5:], m.alias):
        assert [x.id for x in run(store, "Get-Mailbox", Identity=identity).items] == [m.id]


def test_unknown_identity_is_management_object_not_found(store):
    err = fails(store, "Get-Mailbox", "ManagementObjectNotFoundException", Identity="nobody")
    assert err.status == 400
    assert err.message == (
        "The operation couldn't be performed because object 'nobody' couldn't be found on "
        "'EURPR01A001.PROD.OUTLOOK.COM'."
    )


def test_get_mailbox_does_not_find_a_mail_user_get_recipient_does(store):
    mail_user = pick(store, recipient_type_details="MailUser")
    fails(store, "Get-Mailbox", "ManagementObjectNotFoundException", Identity=mail_user.alias)
    assert run(store, "Get-Recipient", Identity=mail_user.alias).items == [mail_user]


def test_identity_is_scoped_by_the_other_parameters(store):
    shared = pick(store, recipient_type_details="SharedMailbox")
    assert run(store, "Get-Mailbox", Identity=shared.alias, RecipientTypeDetails="SharedMailbox")
    fails(
        store,
        "Get-Mailbox",
        "ManagementObjectNotFoundException",
        Identity=shared.alias,
        RecipientTypeDetails="UserMailbox",
    )


def test_recipient_type_details_parameter(store):
    def types(**params: Any) -> set[str]:
        return {m.recipient_type_details for m in run(store, **params).items}

    assert types(cmdlet="Get-Mailbox", RecipientTypeDetails="sharedmailbox") == {"SharedMailbox"}
    both = {"RoomMailbox", "EquipmentMailbox"}
    assert (
        types(cmdlet="Get-Mailbox", RecipientTypeDetails=["RoomMailbox", "EquipmentMailbox"])
        == both
    )
    assert types(cmdlet="Get-Mailbox", RecipientTypeDetails="RoomMailbox, EquipmentMailbox") == both
    assert types(cmdlet="Get-Recipient", RecipientTypeDetails="MailUser") == {"MailUser"}
    err = fails(store, "Get-Mailbox", "ParameterBindingException", RecipientTypeDetails="MailUser")
    assert "does not belong to the set" in err.message
    err = fails(store, "Get-Recipient", "ParameterBindingException", RecipientTypeDetails="Bogus")
    assert "Unable to match the identifier name Bogus to a valid enumerator name" in err.message


# ---------------------------------------------------------------------- filters
def test_filter_on_cloud_managed_user_mailboxes(store):
    text = "IsExchangeCloudManaged -eq $true -and RecipientTypeDetails -eq 'UserMailbox'"
    got = run(store, "Get-Mailbox", Filter=text, ResultSize="Unlimited").items
    want = [
        m
        for m in store
        if m.is_exchange_cloud_managed and m.recipient_type_details == "UserMailbox"
    ]
    assert got == want and 0 < len(got) < len(store)


def test_filter_within_braces_and_combined_with_result_size(store):
    text = "{IsDirSynced -eq $false}"
    got = run(store, "Get-Mailbox", Filter=text, ResultSize=2)
    assert len(got.items) == 2 and not any(m.is_dir_synced for m in got.items)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("EmailAddresses -eq '{secondary}'", True),
        ("EmailAddresses -eq 'SMTP:{secondary}'", True),
        ("EmailAddresses -eq 'smtp:{primary}'", True),
        ("EmailAddresses -like '{local}@*'", True),
        ("PrimarySmtpAddress -eq '{primary}'", True),
        ("WindowsEmailAddress -eq '{primary}'", True),
        ("UserPrincipalName -eq '{upn}'", True),
        ("Alias -eq '{alias}' -and DisplayName -eq '{display}'", True),
        ("ExternalDirectoryObjectId -eq '{id}'", True),
        ("-not (Alias -ne '{alias}')", True),
        ("Alias -like '{alias}*' -and CustomAttribute1 -eq '{ca1}'", True),
        ("Alias -eq '{alias}' -and CustomAttribute1 -ne '{ca1}'", False),
        ("HiddenFromAddressListsEnabled -eq $false -and Alias -eq '{alias}'", True),
    ],
)
def test_filters_on_identity_and_address_properties(store, text, expected):
    m = managed(store)
    secondary = next(a[5:] for a in m.email_addresses if a.startswith("smtp:"))
    text = text.format(
        secondary=secondary,
        primary=m.primary_smtp_address,
        local=m.alias,
        upn=m.user_principal_name,
        alias=m.alias.replace("'", "''"),
        display=m.display_name.replace("'", "''"),
        id=m.id,
        ca1=m.custom_attributes[0] or "",
    )
    found = run(store, "Get-Recipient", Filter=text, ResultSize="Unlimited").items
    assert (m in found) is expected, text


def test_filter_on_custom_attributes(store):
    m = set_mailbox(
        store, managed(store), CustomAttribute7="Tag-7", ExtensionCustomAttribute2=["a", "b"]
    )
    items = run(store, "Get-Mailbox", Filter="CustomAttribute7 -eq 'tag-7'").items
    assert [x.id for x in items] == [m.id]
    items = run(store, "Get-Mailbox", Filter="ExtensionCustomAttribute2 -eq 'B'").items
    assert [x.id for x in items] == [m.id]
    blank = run(store, "Get-Mailbox", Filter="CustomAttribute7 -eq $null", ResultSize="Unlimited")
    everyone = run(store, "Get-Mailbox", ResultSize="Unlimited").items
    assert blank.items == [x for x in everyone if x.custom_attributes[6] is None]
    assert m not in blank.items and len(blank.items) > 100


def test_invalid_filter_is_a_binding_error_with_exchange_text(store):
    text = "RecipientTypeDetails -eq 'UserMailbox' -and"
    err = fails(store, "Get-Mailbox", "ParameterBindingException", Filter=text)
    assert err.message == (
        'Cannot bind parameter \'Filter\' to the target. Exception setting "Filter": "Invalid '
        "filter syntax. For a description of the filter parameter syntax see the command help.\n"
        f'"{text}" at position {len(text) + 1}."'
    )
    err = fails(store, "Get-Mailbox", "ParameterBindingException", Filter="Department -eq 'x'")
    assert '"Department" is not a recognized filterable property' in err.message
    err = fails(
        store, "Get-Mailbox", "ParameterBindingException", Filter="RecipientTypeDetails -eq 'Box'"
    )
    assert 'The value "Box" could not be converted to type' in err.message


# ---------------------------------------------------------------------- invoke and binding
def test_cmdlet_and_parameter_names_are_case_insensitive(store):
    m = managed(store)
    assert run(store, "GET-MAILBOX", IDENTITY=m.alias).items == [m]
    invoke(store, "set-mailbox", {"identity": m.id, "customattribute3": "x"}, can_write=True)
    assert store.mailboxes[m.id].custom_attributes[2] == "x"


def test_unknown_cmdlet(store):
    err = fails(store, "Get-Mailboxes", "CommandNotFoundException")
    assert err.message.startswith("The term 'Get-Mailboxes' is not recognized as the name of a")


def test_unknown_and_repeated_parameters(store):
    err = fails(store, "Get-Mailbox", "ParameterBindingException", Department="x")
    assert err.message == "A parameter cannot be found that matches parameter name 'Department'."
    with pytest.raises(CloudError) as e:
        invoke(store, "Get-Mailbox", {"Identity": "a", "identity": "b"}, can_write=True)
    assert "specified more than once" in e.value.message
    m = managed(store)
    err = fails(store, "Set-Mailbox", "ParameterBindingException", Identity=m.id, Department="x")
    assert "'Department'" in err.message


def test_get_organization_config(store):
    result = run(store, "Get-OrganizationConfig", can_write=False)
    assert list(map(result.render, result.items)) == [store.org.to_json()]
    assert result.items[0]["ExchangeAttributesCloudManagedByDefault"] is False


def test_read_only_caller_can_read_but_gets_403_on_writes(store):
    assert run(store, "Get-Mailbox", can_write=False).items
    err = fails(
        store,
        "Set-Mailbox",
        "AccessDenied",
        can_write=False,
        Identity=managed(store).id,
        CustomAttribute1="x",
    )
    assert err.status == 403


# ---------------------------------------------------------------------- Set-Mailbox basics
def test_set_custom_attributes_sets_clears_and_logs_each(store):
    m = managed(store)
    seq = store.seq
    new = set_mailbox(store, m, CustomAttribute2="CC-1", CustomAttribute15="z")
    assert new.custom_attributes[1] == "CC-1" and new.custom_attributes[14] == "z"
    assert changed(store, seq) == [frozenset({"CustomAttribute2", "CustomAttribute15"})]
    assert set_mailbox(store, m, CustomAttribute2="").custom_attributes[1] is None
    assert set_mailbox(store, m, CustomAttribute15=None).custom_attributes[14] is None
    assert (
        run(store, "Get-Mailbox", Identity=m.id).render(store.mailboxes[m.id])["CustomAttribute2"]
        == ""
    )


def test_custom_attribute_length_limit(store):
    m = managed(store)
    assert set_mailbox(store, m, CustomAttribute1="x" * 1024).custom_attributes[0] == "x" * 1024
    err = fails(
        store,
        "Set-Mailbox",
        "PropertyValidationException",
        Identity=m.id,
        CustomAttribute1="x" * 1025,
    )
    assert err.message == (
        "The length of the property is too long. The maximum length is 1024 and the length of "
        "the value provided is 1025."
    )


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"CustomAttribute1": ["a", "b"]}, "ParameterBindingException"),
        ({"HiddenFromAddressListsEnabled": "yes"}, "ParameterBindingException"),
        ({"IsExchangeCloudManaged": None}, "ParameterBindingException"),
        ({"Type": "Workspace"}, "ParameterBindingException"),
        ({"ExtensionCustomAttribute1": [1]}, "ParameterBindingException"),
        ({"EmailAddresses": {"Replace": ["smtp:a@b.com"]}}, "ParameterBindingException"),
    ],
)
def test_wrong_types_are_binding_errors(store, params, code):
    fails(store, "Set-Mailbox", code, Identity=managed(store).id, **params)


def test_set_mailbox_needs_an_identity_of_a_mailbox(store):
    err = fails(store, "Set-Mailbox", "ParameterBindingException", CustomAttribute1="x")
    assert "missing mandatory parameters: Identity" in err.message
    fails(
        store,
        "Set-Mailbox",
        "ManagementObjectNotFoundException",
        Identity="nobody",
        CustomAttribute1="x",
    )
    mail_user = pick(store, recipient_type_details="MailUser")
    fails(
        store,
        "Set-Mailbox",
        "ManagementObjectNotFoundException",
        Identity=mail_user.id,
        HiddenFromAddressListsEnabled=True,
    )


def test_hidden_from_address_lists(store):
    m = managed(store)
    seq = store.seq
    assert set_mailbox(store, m, HiddenFromAddressListsEnabled=True).hidden_from_address_lists
    assert not set_mailbox(store, m, HiddenFromAddressListsEnabled=0).hidden_from_address_lists
    assert changed(store, seq) == [frozenset({"HiddenFromAddressListsEnabled"})] * 2


def test_type_shared_changes_recipient_type_details_and_logs_it(store):
    m = managed(store)
    seq = store.seq
    assert set_mailbox(store, m, Type="Shared").recipient_type_details == "SharedMailbox"
    assert changed(store, seq) == [frozenset({"RecipientTypeDetails"})]
    assert set_mailbox(store, m, Type="room").recipient_type_details == "RoomMailbox"
    assert set_mailbox(store, m, Type="Equipment").recipient_type_details == "EquipmentMailbox"
    assert set_mailbox(store, m, Type="Regular").recipient_type_details == "UserMailbox"
    assert len(changed(store, seq)) == 4


def test_a_no_op_set_mailbox_logs_no_change(store):
    m = managed(store)
    seq = store.seq
    result = run(
        store,
        "Set-Mailbox",
        Identity=m.alias,
        CustomAttribute1=m.custom_attributes[0],
        EmailAddresses=list(reversed(m.email_addresses)),  # same set, other order
        WindowsEmailAddress=m.primary_smtp_address,
        ExtensionCustomAttribute1={"Add": [], "Remove": ["not-there"]},
        HiddenFromAddressListsEnabled=m.hidden_from_address_lists,
        Type="Regular",
        IsExchangeCloudManaged=True,
    )
    assert store.changes_after(seq) == [] and store.mailboxes[m.id] is m
    assert result.warnings == (
        f"The command completed successfully but no settings of '{m.alias}' have been modified.",
    )


def test_what_if_validates_but_changes_nothing(store):
    m = managed(store)
    seq = store.seq
    run(store, "Set-Mailbox", Identity=m.id, CustomAttribute1="new", WhatIf=True)
    assert store.changes_after(seq) == []
    fails(
        store,
        "Set-Mailbox",
        "PropertyValidationException",
        Identity=m.id,
        CustomAttribute1="x" * 2000,
        WhatIf=True,
    )


# ---------------------------------------------------------------------- ExtensionCustomAttribute
def test_extension_custom_attribute_replace_add_remove_and_clear(store):
    m = managed(store)
    seq = store.seq
    assert set_mailbox(store, m, ExtensionCustomAttribute3=["a", "b"]).extension_custom_attributes[
        2
    ] == ("a", "b")
    edit = {"Add": ["c", "A"], "Remove": "b"}  # "A" is "a" (values ignore case in AD)
    assert set_mailbox(store, m, ExtensionCustomAttribute3=edit).extension_custom_attributes[2] == (
        "c",
        "A",
    )
    assert set_mailbox(
        store, m, extensionCustomAttribute3={"remove": ["C", "x"]}
    ).extension_custom_attributes[2] == ("A",)
    assert set_mailbox(store, m, ExtensionCustomAttribute3="single").extension_custom_attributes[
        2
    ] == ("single",)
    assert (
        set_mailbox(store, m, ExtensionCustomAttribute3=None).extension_custom_attributes[2] == ()
    )
    assert changed(store, seq) == [frozenset({"ExtensionCustomAttribute3"})] * 5


def test_extension_custom_attribute_limits(store):
    m = managed(store)
    ok = set_mailbox(store, m, ExtensionCustomAttribute1=["y" * 2048])
    assert ok.extension_custom_attributes[0] == ("y" * 2048,)
    err = fails(
        store,
        "Set-Mailbox",
        "PropertyValidationException",
        Identity=m.id,
        ExtensionCustomAttribute1={"Add": "y" * 2049},
    )
    assert "The maximum length is 2048 and the length of the value provided is 2049." in err.message
    fails(
        store,
        "Set-Mailbox",
        "DataValidationException",
        Identity=m.id,
        ExtensionCustomAttribute1=["a", "A"],
    )
    fails(
        store,
        "Set-Mailbox",
        "PropertyValidationException",
        Identity=m.id,
        ExtensionCustomAttribute1=["a", ""],
    )


# ---------------------------------------------------------------------- EmailAddresses
def test_email_addresses_add_and_remove(store):
    m = managed(store)
    seq = store.seq
    x500 = "X500:/o=Contoso/ou=First/cn=Recipients/cn=abc"
    new = set_mailbox(
        store, m, EmailAddresses={"Add": ["extra@contoso.com", x500, "SIP:a@contoso.com"]}
    )
    assert new.email_addresses == (
        *m.email_addresses,
        "smtp:extra@contoso.com",
        x500,
        "SIP:a@contoso.com",
    )
    assert new.windows_email_address == m.windows_email_address
    assert changed(store, seq) == [frozenset({"EmailAddresses"})]
    new = set_mailbox(store, m, EmailAddresses={"Remove": ["SMTP:EXTRA@contoso.com", x500.lower()]})
    assert new.email_addresses == (*m.email_addresses, "SIP:a@contoso.com")
    assert store.owner_of("smtp:extra@contoso.com") is None  # the store's index follows


def test_email_addresses_list_replaces_and_first_smtp_becomes_primary(store):
    m = managed(store)
    seq = store.seq
    new = set_mailbox(store, m, EmailAddresses=["first@contoso.com", "smtp:second@contoso.com"])
    assert new.email_addresses == ("SMTP:first@contoso.com", "smtp:second@contoso.com")
    assert new.windows_email_address == new.primary_smtp_address == "first@contoso.com"
    assert changed(store, seq) == [frozenset({"EmailAddresses", "WindowsEmailAddress"})]
    new = set_mailbox(store, m, EmailAddresses=["smtp:a@contoso.com", "SMTP:b@contoso.com"])
    assert new.primary_smtp_address == new.windows_email_address == "b@contoso.com"


def test_primary_swap_through_add_and_remove(store):
    m = managed(store)
    old = m.primary_smtp_address
    edit = {"Remove": [f"SMTP:{old}"], "Add": ["SMTP:new.primary@contoso.com", f"smtp:{old}"]}
    new = set_mailbox(store, m, EmailAddresses=edit)
    assert new.primary_smtp_address == new.windows_email_address == "new.primary@contoso.com"
    assert f"smtp:{old}" in new.email_addresses


def test_windows_email_address_swaps_the_primary(store):
    m = managed(store)
    old = m.primary_smtp_address
    secondary = next(a[5:] for a in m.email_addresses if a.startswith("smtp:"))
    seq = store.seq
    new = set_mailbox(store, m, WindowsEmailAddress=secondary)
    assert new.windows_email_address == new.primary_smtp_address == secondary
    assert f"smtp:{old}" in new.email_addresses and f"SMTP:{secondary}" in new.email_addresses
    assert sum(a.startswith("SMTP:") for a in new.email_addresses) == 1
    assert len(new.email_addresses) == len(m.email_addresses)
    assert changed(store, seq) == [frozenset({"EmailAddresses", "WindowsEmailAddress"})]
    fresh = set_mailbox(store, m, WindowsEmailAddress="brand.new@contoso.com")
    assert fresh.email_addresses[0] == "SMTP:brand.new@contoso.com"
    assert f"smtp:{secondary}" in fresh.email_addresses
    assert store.owner_of("smtp:brand.new@contoso.com").id == m.id


@pytest.mark.parametrize(
    ("value", "code", "text"),
    [
        (
            ["SMTP:a@contoso.com", "SMTP:b@contoso.com"],
            "DataValidationException",
            "multiple primary",
        ),
        (["X500:/o=x/cn=y"], "DataValidationException", "must have a primary SMTP address"),
        (["a@contoso.com", "SMTP:A@CONTOSO.COM"], "DataValidationException", "already present"),
        (["not-an-address"], "PropertyValidationException", 'The email address "not-an-address"'),
        (["smtp:a@nodot"], "PropertyValidationException", "isn't correct"),
        (["smtp:a b@contoso.com"], "PropertyValidationException", "isn't correct"),
        (["SMTP:a@contoso.com", "X500:o=no-slash"], "PropertyValidationException", "X500"),
        (["SMTP:a@contoso.com", "FAX:12345"], "PropertyValidationException", "unsupported prefix"),
        ({"Add": "SMTP:second.primary@contoso.com"}, "DataValidationException", "multiple primary"),
        ({"Remove": "{primary}"}, "DataValidationException", "must have a primary"),
    ],
)
def test_email_address_rules(store, value, code, text):
    m = managed(store)
    if isinstance(value, dict) and value.get("Remove") == "{primary}":
        value = {"Remove": m.primary_smtp_address}
    err = fails(store, "Set-Mailbox", code, Identity=m.id, EmailAddresses=value)
    assert text in err.message


def test_address_of_another_recipient_is_refused_and_names_it(store):
    m, other = managed(store), unmanaged(store)
    taken = next(a for a in other.email_addresses if a.startswith("smtp:"))
    err = fails(
        store,
        "Set-Mailbox",
        "ProxyAddressExistsException",
        Identity=m.id,
        CustomAttribute1="would-change",
        EmailAddresses={"Add": taken.upper().replace("SMTP:", "smtp:")},
    )
    assert err.message == (
        f'The proxy address "{taken.upper().replace("SMTP:", "smtp:")}" is already being used by '
        f'the proxy addresses or LegacyExchangeDN of "{other.alias}". Please choose another '
        "proxy address."
    )
    assert store.mailboxes[m.id] is m  # nothing applied, not even CustomAttribute1
    fails(
        store,
        "Set-Mailbox",
        "ProxyAddressExistsException",
        Identity=m.id,
        WindowsEmailAddress=other.primary_smtp_address,
    )


def test_windows_email_address_must_be_an_smtp_address(store):
    m = managed(store)
    for bad in ("", None, "SMTP:x@contoso.com", "nobody"):
        fails(
            store,
            "Set-Mailbox",
            "PropertyValidationException",
            Identity=m.id,
            WindowsEmailAddress=bad,
        )


# ---------------------------------------------------------------------- write scope
def test_dir_synced_mailbox_is_read_only_until_cloud_managed(store):
    m = unmanaged(store)
    err = fails(
        store,
        "Set-Mailbox",
        "TaskInvalidOperationException",
        Identity=m.alias,
        CustomAttribute1="x",
    )
    assert err.message == (
        f"The operation on mailbox \"{m.alias}\" failed because it's out of the current user's "
        f"write scope. The action 'Set-Mailbox', 'CustomAttribute1', can't be performed on the "
        f"object '{m.alias}' because the object is being synchronized from your on-premises "
        "organization. This action should be performed on the object in your on-premises "
        "organization."
    )
    for params in (
        {"EmailAddresses": {"Add": "x@contoso.com"}},
        {"WindowsEmailAddress": "x@contoso.com"},
        {"ExtensionCustomAttribute1": ["x"]},
        {"HiddenFromAddressListsEnabled": True},
        {"Type": "Shared"},
    ):
        fails(store, "Set-Mailbox", "TaskInvalidOperationException", Identity=m.id, **params)
    seq = store.seq
    assert set_mailbox(store, m, IsExchangeCloudManaged=True).is_exchange_cloud_managed
    assert changed(store, seq) == [frozenset({"IsExchangeCloudManaged"})]
    assert set_mailbox(store, m, CustomAttribute1="x").custom_attributes[0] == "x"
    assert set_mailbox(store, m, Type="Shared").recipient_type_details == "SharedMailbox"


def test_the_write_scope_uses_the_flag_value_after_the_request(store):
    m = unmanaged(store)
    seq = store.seq
    new = set_mailbox(store, m, IsExchangeCloudManaged=True, CustomAttribute4="both")
    assert new.is_exchange_cloud_managed and new.custom_attributes[3] == "both"
    assert changed(store, seq) == [frozenset({"IsExchangeCloudManaged", "CustomAttribute4"})]
    err = fails(
        store,
        "Set-Mailbox",
        "TaskInvalidOperationException",
        Identity=m.id,
        IsExchangeCloudManaged=False,
        CustomAttribute4="x",
        Type="Shared",
    )
    assert "'CustomAttribute4, Type'" in err.message
    assert not set_mailbox(store, m, IsExchangeCloudManaged=False).is_exchange_cloud_managed


def test_cloud_only_mailboxes_are_never_out_of_scope(store):
    m = pick(store, is_dir_synced=False)
    assert set_mailbox(store, m, CustomAttribute1="cloud").custom_attributes[0] == "cloud"


def test_scope_is_checked_before_values(store):
    # Exchange refuses the out-of-scope request before it looks at the values.
    m = unmanaged(store)
    fails(
        store,
        "Set-Mailbox",
        "TaskInvalidOperationException",
        Identity=m.id,
        CustomAttribute1="x" * 5000,
    )
