"""Federation: organisation relationships, the intra-organisation connector, the federated
organisation identifier and the federation trust."""

from __future__ import annotations

from harness.clients.exo import CmdletError
from harness.core.dn import normalize_dn
from harness.decommission.ems.shell import (
    INVALID_OPERATION,
    ExchangeShell,
    Row,
    _base,
    _cmdlet,
    _get,
    _ldap_bool,
    _Obj,
    _Params,
    _rdn_value,
    _remove,
    _set_enabled,
    _truth,
)
from harness.tenant.exchange_org import FEDERATION_TRUST


# ====================================================================== federation
def _set_fed_enabled(sh: ExchangeShell, p: _Params, object_class: str) -> list[Row]:
    """Set-OrganizationRelationship / Set-IntraOrganizationConnector -Enabled: a Boolean."""
    return _set_enabled(
        sh, p, object_class, "msExchFedIsEnabled", lambda o, enabled: _ldap_bool(enabled)
    )


_REL_ATTRS = (
    "msExchFedIsEnabled", "msExchFedDomainNames", "msExchFedTargetSharingEPR",
    "msExchFedTargetApplicationURI", "msExchFedTargetAutodiscoverEPR", "msExchFedEnabledActions",
)  # fmt: skip


def _org_relationship_row(o: _Obj) -> Row:
    actions = set(o.all("msExchFedEnabledActions"))
    return {
        **_base(o),
        "DomainNames": o.all("msExchFedDomainNames"),
        "Enabled": o.flag("msExchFedIsEnabled"),
        "TargetSharingEpr": o.one("msExchFedTargetSharingEPR"),
        "TargetApplicationUri": o.one("msExchFedTargetApplicationURI"),
        "TargetAutodiscoverEpr": o.one("msExchFedTargetAutodiscoverEPR"),
        "FreeBusyAccessEnabled": "MSExchange.SharingCalendarFreeBusyEnabled" in actions,
        "MailboxMoveEnabled": "MSExchange.MailboxMove" in actions,
        "DeliveryReportEnabled": "MSExchange.DeliveryReportEnabled" in actions,
        "MailTipsAccessEnabled": "MSExchange.MailTipsAccessEnabled" in actions,
    }


@_cmdlet("Get-OrganizationRelationship", "Identity")
def _get_org_relationship(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _get(sh, p, "msExchFedSharingRelationship", _REL_ATTRS, _org_relationship_row)


@_cmdlet("Set-OrganizationRelationship", "Identity", "Enabled", "Confirm")
def _set_org_relationship(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _set_fed_enabled(sh, p, "msExchFedSharingRelationship")


@_cmdlet("Remove-OrganizationRelationship", "Identity", "Confirm")
def _remove_org_relationship(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _remove(sh, p, "msExchFedSharingRelationship")


_IOC_ATTRS = ("msExchFedIsEnabled", "msExchFedDomainNames", "msExchFedTargetAutodiscoverEPR")


def _ioc_row(o: _Obj) -> Row:
    return {
        **_base(o),
        "TargetAddressDomains": o.all("msExchFedDomainNames"),
        "DiscoveryEndpoint": o.one("msExchFedTargetAutodiscoverEPR"),
        "Enabled": o.flag("msExchFedIsEnabled"),
    }


@_cmdlet("Get-IntraOrganizationConnector", "Identity")
def _get_ioc(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _get(sh, p, "msExchIntraOrganizationConnector", _IOC_ATTRS, _ioc_row)


@_cmdlet("Set-IntraOrganizationConnector", "Identity", "Enabled", "Confirm")
def _set_ioc(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _set_fed_enabled(sh, p, "msExchIntraOrganizationConnector")


@_cmdlet("Remove-IntraOrganizationConnector", "Identity", "Confirm")
def _remove_ioc(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _remove(sh, p, "msExchIntraOrganizationConnector")


_FOI_ATTRS = ("msExchFedIsEnabled", "msExchFedDelegationTrust", "msExchFedAccountNamespace")


def _foi(sh: ExchangeShell) -> _Obj | None:
    found = sh._search(sh.org_dn, "one", "msExchFedOrgId", _FOI_ATTRS)
    return found[0] if found else None


@_cmdlet("Get-FederatedOrganizationIdentifier", "Identity")
def _get_foi(sh: ExchangeShell, p: _Params) -> list[Row]:
    o = _foi(sh)
    if o is None:
        return []
    trust = o.one("msExchFedDelegationTrust")
    return [
        {
            **_base(o, sh.org_name),
            "Enabled": o.flag("msExchFedIsEnabled"),
            "AccountNamespace": o.one("msExchFedAccountNamespace"),
            "DelegationTrustLink": _rdn_value(trust) if trust else None,
            "DelegationTrustLinkDN": trust,
        }
    ]


@_cmdlet(
    "Set-FederatedOrganizationIdentifier",
    "Identity",
    "Enabled",
    "DelegationFederationTrust",
    "AccountNamespace",
    "Confirm",
)
def _set_foi(sh: ExchangeShell, p: _Params) -> list[Row]:
    o = _foi(sh)
    if o is None:
        raise sh.not_found(str(p.get("Identity") or "Federation"))
    changes: list[tuple[str, str, tuple[str, ...]]] = []
    if p.has("DelegationFederationTrust"):
        trust = sh._pick(sh._org("msExchFedTrust", ()), p.get("DelegationFederationTrust"))
        changes.append(("replace", "msExchFedDelegationTrust", (trust.dn,)))
    if p.has("AccountNamespace"):
        changes.append(("replace", "msExchFedAccountNamespace", (str(p.get("AccountNamespace")),)))
    if p.has("Enabled"):
        enabled = _truth(p.get("Enabled"), "Enabled")
        if enabled and not (
            o.one("msExchFedDelegationTrust") or p.has("DelegationFederationTrust")
        ):
            raise CmdletError(
                400,
                INVALID_OPERATION,
                "The federated organization identifier can't be enabled without a delegation "
                "federation trust. Use the DelegationFederationTrust parameter.",
            )
        changes.append(("replace", "msExchFedIsEnabled", (_ldap_bool(enabled),)))
        if not enabled and o.one("msExchFedDelegationTrust"):
            # As Exchange does: a disabled identifier no longer delegates to the trust.
            changes.append(("delete", "msExchFedDelegationTrust", ()))
    if changes:
        sh._modify(o.dn, changes)
    return []


_TRUST_ATTRS = ("msExchFedOrgPrivCertificate", "msExchFedApplicationURI", "msExchFedTokenIssuerURI")


def _federation_trust_row(o: _Obj) -> Row:
    return {
        **_base(o),
        "OrgPrivCertificate": o.one("msExchFedOrgPrivCertificate"),
        "ApplicationUri": o.one("msExchFedApplicationURI"),
        "TokenIssuerUri": o.one("msExchFedTokenIssuerURI"),
    }


@_cmdlet("Get-FederationTrust", "Identity")
def _get_federation_trust(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _get(sh, p, "msExchFedTrust", _TRUST_ATTRS, _federation_trust_row)


@_cmdlet("Remove-FederationTrust", "Identity", "Confirm")
def _remove_federation_trust(sh: ExchangeShell, p: _Params) -> list[Row]:
    identity = p.get("Identity") or FEDERATION_TRUST
    trust = sh._pick(sh._org("msExchFedTrust", ()), identity)
    users = []
    foi = _foi(sh)
    if foi is not None:
        link = foi.one("msExchFedDelegationTrust")
        if foi.flag("msExchFedIsEnabled"):
            users.append(f"{sh.org_name} (federated organization identifier: enabled)")
        elif link and normalize_dn(link) == normalize_dn(trust.dn):
            users.append(f"{sh.org_name} (federated organization identifier: delegation trust)")
    users += [
        f"{o.name} (organization relationship)" for o in sh._org("msExchFedSharingRelationship", ())
    ]
    if users:
        raise CmdletError(
            400,
            INVALID_OPERATION,
            f"Federation trust '{trust.name}' can't be removed because it's in use by the "
            f"following organization(s): {', '.join(users)}.",
        )
    sh._delete(trust.dn, str(identity))
    return []
