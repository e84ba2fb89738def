"""The ordered steps of each decommission path, with the cmdlet each stands for.

A `Step` knows, from a `Survey`, what of its work remains (`remaining`: empty when done, so a
re-run skips it), and how to do it over the wire (`run`). The order follows Microsoft's
procedures (reference section 3): hybrid configuration cleanup, then the server itself
(uninstalled on the 2026 "after transferring SOA" path, shut down and never uninstalled on the
Management Tools path), then the post-uninstall cleanup in Exchange Online, then a writeback
cycle to show writeback still converges without the server.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.decommission.estate import Estate, Obj, Survey, mail_domains, names, prop

SOA = "soa-uninstall"
TOOLS = "management-tools"
BOTH = (SOA, TOOLS)
EXO_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
HCW_INBOUND = re.compile(rf"^Inbound from {_GUID}$")
HCW_OUTBOUND = re.compile(rf"^Outbound to {_GUID}$")
HCW_SEND = re.compile(rf"^Outbound to Office 365 - {_GUID}$")
CLOUD_RELATIONSHIP = re.compile(rf"^O365 to On-Premises - {_GUID}$")
ONPREM_RELATIONSHIP = re.compile(rf"^On-premises to O365 - {_GUID}$")
HYBRID_SERVICE = "Microsoft Hybrid Service"
PHASES = (
    "Hybrid configuration cleanup",
    "The server",
    "Post-uninstall cleanup in Exchange Online",
    "Writeback after the server",
)
NOT_ON_TOOLS_PATH = (
    "The Management Tools path never uninstalls the last Exchange Server: uninstalling it "
    "removes the Exchange information in Active Directory that the Management Tools need to "
    'manage recipients. Shut it down, then erase or reformat it (Microsoft: "DO NOT uninstall '
    'the last server" in this scenario).'
)


class StepFailed(Exception):
    """A step's action or its verification failed; the message says what is left."""


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    phase: str
    title: str
    side: str  # on-premises Exchange, Exchange Online, Entra ID, host, writeback
    paths: tuple[str, ...]
    command: Callable[[Survey], str]
    precondition: str
    verification: str
    remaining: Callable[[Survey], list[str] | None]  # None: only the journal knows
    run: Callable[[Estate, Survey], str]  # returns what it did

    def describe(self, s: Survey) -> dict[str, Any]:
        return {
            "id": self.id,
            "phase": self.phase,
            "title": self.title,
            "side": self.side,
            "command": self.command(s),
            "precondition": self.precondition,
            "verification": self.verification,
        }


def _enabled(o: Obj) -> bool:
    v = prop(o, "Enabled", True)
    return v is True or str(v).casefold() == "true"


def _named(objs: list[Obj], pattern: re.Pattern[str]) -> list[str]:
    return [n for n in names(objs) if pattern.match(n)]


def _quote(items: list[str], fmt: str, none: str) -> str:
    return "; ".join(fmt.format(q=f'"{i}"') for i in items) if items else none


# ---------------------------------------------------------------------- IOCs
def _iocs(objs: list[Obj]) -> list[str]:
    return [n for o, n in zip(objs, names(objs), strict=True) if _enabled(o)]


def _disable_iocs(shell: str) -> Callable[[Estate, Survey], str]:
    def run(e: Estate, s: Survey) -> str:
        call = e.onprem if shell == "onprem" else e.cloud
        left = _iocs(s.onprem_ioc if shell == "onprem" else s.cloud_ioc)
        for name in left:
            call("Set-IntraOrganizationConnector", Identity=name, Enabled=False)
        return f"disabled {', '.join(left)}"

    return run


# ---------------------------------------------------------------------- SCP
def _scp_left(s: Survey) -> list[str]:
    return [
        str(prop(c, "Name"))
        for c in s.client_access
        if prop(c, "AutoDiscoverServiceInternalUri") not in (None, "")
    ]


def _null_scp(e: Estate, s: Survey) -> str:
    left = _scp_left(s)
    for name in left:
        e.onprem("Set-ClientAccessService", Identity=name, AutoDiscoverServiceInternalUri=None)
    return f"cleared the Autodiscover SCP of {', '.join(left)}"


# ---------------------------------------------------------------------- EXO connectors
def _routes_through(rule: Obj, connectors: set[str]) -> bool:
    for value in rule.values():
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and v in connectors for v in items):
            return True
    return False


def _hcw_connectors(s: Survey) -> tuple[list[str], list[str]]:
    return _named(s.inbound, HCW_INBOUND), _named(s.outbound, HCW_OUTBOUND)


def _connector_rules(s: Survey, outbound: list[str]) -> list[str]:
    wanted = set(outbound)
    return [str(prop(r, "Name")) for r in s.rules if _routes_through(r, wanted)]


Removal = tuple[list[str], list[str], list[str]]  # transport rules, inbound, outbound connectors
_REMOVERS = ("Remove-TransportRule", "Remove-InboundConnector", "Remove-OutboundConnector")


def _hcw_removal(s: Survey) -> Removal:
    # A rule that routes through the outbound connector keeps Remove-OutboundConnector from
    # running (Exchange refuses), so such rules go first.
    inbound, outbound = _hcw_connectors(s)
    return _connector_rules(s, outbound), inbound, outbound


def _removal_left(pick: Callable[[Survey], Removal], prefix: str) -> Callable[[Survey], list[str]]:
    def left(s: Survey) -> list[str]:
        rules, inbound, outbound = pick(s)
        return [f"transport rule {r}" for r in rules] + [prefix + c for c in inbound + outbound]

    return left


def _removal_command(pick: Callable[[Survey], Removal], none: str) -> Callable[[Survey], str]:
    def command(s: Survey) -> str:
        parts = [
            f'{cmdlet} "{name}"'
            for cmdlet, found in zip(_REMOVERS, pick(s), strict=True)
            for name in found
        ]
        return "; ".join(parts) or none

    return command


def _removal_run(pick: Callable[[Survey], Removal]) -> Callable[[Estate, Survey], str]:
    def run(e: Estate, s: Survey) -> str:
        removal = pick(s)
        for cmdlet, found in zip(_REMOVERS, removal, strict=True):
            for name in found:
                e.cloud(cmdlet, Identity=name, Confirm=False)
        rules, inbound, outbound = removal
        return f"removed {len(rules)} rule(s) and {len(inbound) + len(outbound)} connector(s)"

    return run


# ---------------------------------------------------------------------- simple removals
def _remover(shell: str, cmdlet: str, pick: Callable[[Survey], list[str]]):
    def run(e: Estate, s: Survey) -> str:
        call = e.onprem if shell == "onprem" else e.cloud
        left = pick(s)
        for name in left:
            call(cmdlet, Identity=name, Confirm=False)
        return f"{cmdlet} {', '.join(left)}"

    return run


def _cloud_relationships(s: Survey) -> list[str]:
    return _named(s.cloud_relationships, CLOUD_RELATIONSHIP)


def _onprem_relationships(s: Survey) -> list[str]:
    return _named(s.onprem_relationships, ONPREM_RELATIONSHIP)


def _send_connectors(s: Survey) -> list[str]:
    return _named(s.send_connectors, HCW_SEND)


def _tls_left(s: Survey) -> list[str]:
    out = []
    for c in s.receive_connectors:
        caps = prop(c, "TlsDomainCapabilities") or []
        caps = caps if isinstance(caps, list) else [caps]
        if any("mail.protection.outlook.com" in str(v).casefold() for v in caps):
            out.append(str(prop(c, "Identity") or prop(c, "Name")))
    return out


def _clear_tls(e: Estate, s: Survey) -> str:
    left = _tls_left(s)
    for ident in left:
        e.onprem("Set-ReceiveConnector", Identity=ident, TlsDomainCapabilities=None)
    return f"cleared TlsDomainCapabilities on {', '.join(left)}"


def _hybrid_remote_domains(s: Survey) -> list[str]:
    return [n for n in names(s.remote_domains) if n.startswith("Hybrid Domain - ")]


def _coexistence_domain(s: Survey) -> str | None:
    return next(
        (d for d in s.accepted_domains if d.casefold().endswith(".mail.onmicrosoft.com")), None
    )


def _coexistence_left(s: Survey) -> list[str]:
    domain = _coexistence_domain(s)
    if domain is None:
        return []
    for r in s.remote_domains:
        if str(prop(r, "DomainName", "")).casefold() == domain.casefold():
            return [] if prop(r, "TargetDeliveryDomain") in (True, "True", "true") else [domain]
    return [domain]


def _keep_coexistence(e: Estate, s: Survey) -> str:
    domain = _coexistence_domain(s)
    if domain is None:
        return "no coexistence domain"
    existing = [
        r
        for r in s.remote_domains
        if str(prop(r, "DomainName", "")).casefold() == domain.casefold()
    ]
    name = str(prop(existing[0], "Name")) if existing else f"Hybrid Domain - {domain}"
    if not existing:
        e.onprem("New-RemoteDomain", Name=name, DomainName=domain)
    e.onprem("Set-RemoteDomain", Identity=name, TargetDeliveryDomain=True)
    return f"{name}: TargetDeliveryDomain $true"


def _fed_id_left(s: Survey) -> list[str]:
    fed = s.fed_org_id
    return ["federated organization identifier"] if fed and _enabled(fed) else []


def _disable_fed_id(e: Estate, s: Survey) -> str:
    e.onprem("Set-FederatedOrganizationIdentifier", Enabled=False)
    return "federated organization identifier disabled"


def _federation_certs(s: Survey) -> list[str]:
    return [
        str(prop(c, "thumbprint"))
        for c in s.host_certificates
        if str(prop(c, "subject", "")).casefold() == "cn=federation"
    ]


def _remove_federation_certs(e: Estate, s: Survey) -> str:
    left = _federation_certs(s)
    for t in left:
        e.hosts.delete_certificate(str(s.last_server), t)
    return f"removed certificate(s) {', '.join(left)}"


# ---------------------------------------------------------------------- OAuth key
def _thumbprint_of(key: Obj) -> str:
    raw = str(prop(key, "customKeyIdentifier") or "")
    try:
        return base64.b64decode(raw, validate=True).hex().upper()
    except (binascii.Error, ValueError):
        return raw.upper()


def _oauth_keys(s: Survey) -> list[Obj]:
    thumb = str(prop(s.auth_config, "CurrentCertificateThumbprint") or "").upper()
    keys = list(prop(s.exo_principal, "keyCredentials", []) or [])
    return [k for k in keys if thumb and _thumbprint_of(k) == thumb]


def _remove_oauth_key(e: Estate, s: Survey) -> str:
    doomed = {str(prop(k, "keyId")) for k in _oauth_keys(s)}
    keys = list(prop(s.exo_principal, "keyCredentials", []) or [])
    kept = [k for k in keys if str(prop(k, "keyId")) not in doomed]
    e.set_key_credentials(str(prop(s.exo_principal, "id")), kept)
    return f"removed keyCredential(s) {', '.join(sorted(doomed))}"


# ---------------------------------------------------------------------- auth servers
def _auth_left(s: Survey) -> list[str]:
    out = [
        f"auth server {n}"
        for o, n in zip(s.auth_servers, names(s.auth_servers), strict=True)
        if _enabled(o) and n.casefold().startswith(("acs", "evosts"))
    ]
    out += [
        f"partner application {n}"
        for o, n in zip(s.partner_apps, names(s.partner_apps), strict=True)
        if _enabled(o) and str(prop(o, "ApplicationIdentifier", "")).casefold() == EXO_APP_ID
    ]
    return out


def _disable_auth(e: Estate, s: Survey) -> str:
    done = []
    for item in _auth_left(s):
        kind, _, name = item.partition(" ")
        if kind == "auth":
            name = item.removeprefix("auth server ")
            e.onprem("Set-AuthServer", Identity=name, Enabled=False)
        else:
            name = item.removeprefix("partner application ")
            e.onprem("Set-PartnerApplication", Identity=name, Enabled=False)
        done.append(name)
    return f"disabled {', '.join(done)}"


# ---------------------------------------------------------------------- Hybrid Agent
def _agent_left(s: Survey) -> list[str]:
    out = [f"hybrid application {prop(a, 'AppId')}" for a in s.hybrid_apps]
    if any(prop(v, "name") == HYBRID_SERVICE for v in s.host_services):
        out.append(f"{HYBRID_SERVICE} on {s.last_server}")
    return out


def _remove_agent(e: Estate, s: Survey) -> str:
    for a in s.hybrid_apps:
        e.cloud("Remove-HybridApplication", AppId=str(prop(a, "AppId")), Confirm=False)
    if any(prop(v, "name") == HYBRID_SERVICE for v in s.host_services):
        e.hosts.delete_service(str(s.last_server), HYBRID_SERVICE)
    return "Hybrid Agent removed"


# ---------------------------------------------------------------------- the server
def _uninstall_left(s: Survey) -> list[str]:
    return [] if s.server_state == "Uninstalled" else [f"{s.last_server} ({s.server_state})"]


def _uninstall(e: Estate, s: Survey) -> str:
    e.hosts.setup(str(s.last_server), "Uninstall")
    return f"Exchange Server uninstalled from {s.last_server}"


def _shutdown_left(s: Survey) -> list[str]:
    return [f"{s.last_server} ({s.server_state})"] if s.server_state == "Running" else []


def _shutdown(e: Estate, s: Survey) -> str:
    e.hosts.shutdown(str(s.last_server))
    return f"{s.last_server} shut down"


# ---------------------------------------------------------------------- stale EXO objects
def onprem_markers(s: Survey) -> set[str]:
    """Names that mean "the on-premises organisation" inside an EXO object."""
    marks = {f"mail.{d}".casefold() for d in mail_domains(s.accepted_domains)}
    for h in [s.host] if s.host else []:
        for key in ("fqdn", "ip"):
            if prop(h, key):
                marks.add(str(prop(h, key)).casefold())
    return marks


def _mentions(obj: Obj, marks: set[str]) -> bool:
    for value in obj.values():
        items = value if isinstance(value, list) else [value]
        for v in items:
            if isinstance(v, str) and any(m in v.casefold() for m in marks):
                return True
    return False


def stale_cloud_objects(s: Survey) -> Removal:
    """(rules, inbound, outbound) in EXO that still reference the on-premises organisation."""
    marks = onprem_markers(s)
    inbound = [str(prop(c, "Name")) for c in s.inbound if _mentions(c, marks)]
    outbound = [str(prop(c, "Name")) for c in s.outbound if _mentions(c, marks)]
    gone = set(outbound) | {
        str(prop(c, "Name")) for c in s.outbound if HCW_OUTBOUND.match(str(prop(c, "Name")))
    }
    rules = [
        str(prop(r, "Name")) for r in s.rules if _mentions(r, marks) or _routes_through(r, gone)
    ]
    return rules, inbound, outbound


# ---------------------------------------------------------------------- writeback
def _confirm_writeback(e: Estate, s: Survey) -> str:
    from harness.engine.cycle import CycleError
    from harness.engine.job import WritebackJob
    from harness.engine.rules import GA

    try:
        report = WritebackJob.for_endpoints(e.ep, e.state_dir, GA).run("delta")
    except CycleError as err:
        raise StepFailed(f"the writeback cycle stopped: {err}") from None
    failed = report.statuses.get("Failure", 0)
    if report.stopped or failed:
        raise StepFailed(
            f"the writeback cycle after decommission had {failed} failure(s)"
            + (f" and stopped: {report.stopped}" if report.stopped else "")
        )
    return (
        f"delta cycle: {report.objects:,} object(s), {report.actions.get('Update', 0):,} "
        f"update(s), 0 failures (log {report.log_path})"
    )


def _const(text: str) -> Callable[[Survey], str]:
    return lambda s: text


def _listed(fmt: str, pick: Callable[[Survey], list[str]], none: str) -> Callable[[Survey], str]:
    return lambda s: _quote(pick(s), fmt, none)


H, SRV, POST, WB = PHASES
STEPS: tuple[Step, ...] = (
    Step("disable-onprem-ioc", H, "Disable the on-premises intra-organization connector",
         "on-premises Exchange", BOTH,
         _listed("Set-IntraOrganizationConnector {q} -Enabled $false",
                 lambda s: _iocs(s.onprem_ioc), "Set-IntraOrganizationConnector "
                 "ExchangeHybridOnPremisesToOnline -Enabled $false"),
         "OAuth was configured by the Hybrid Configuration Wizard",
         "Get-IntraOrganizationConnector shows Enabled False",
         lambda s: _iocs(s.onprem_ioc), _disable_iocs("onprem")),
    Step("disable-cloud-ioc", H, "Disable the Exchange Online intra-organization connector",
         "Exchange Online", BOTH,
         _listed("Set-IntraOrganizationConnector {q} -Enabled $false",
                 lambda s: _iocs(s.cloud_ioc), "Set-IntraOrganizationConnector "
                 "ExchangeHybridOnlineToOnPremises -Enabled $false"),
         "OAuth was configured by the Hybrid Configuration Wizard",
         "Get-IntraOrganizationConnector in EXO shows Enabled False",
         lambda s: _iocs(s.cloud_ioc), _disable_iocs("cloud")),
    Step("null-autodiscover-scp", H, "Clear the Autodiscover service connection point",
         "on-premises Exchange", BOTH,
         _const("Get-ClientAccessService | Set-ClientAccessService "
                "-AutoDiscoverServiceInternalUri $null"),
         "Autodiscover DNS points to Exchange Online",
         "Get-ClientAccessService shows no AutoDiscoverServiceInternalUri",
         _scp_left, _null_scp),
    Step("remove-cloud-connectors", H, "Remove the HCW connectors in Exchange Online",
         "Exchange Online", BOTH,
         _removal_command(_hcw_removal, 'Remove-InboundConnector "Inbound from <id>"; '
                          'Remove-OutboundConnector "Outbound to <id>" (none left)'),
         "MX points to Exchange Online, so no mail flows through the connectors",
         "Get-InboundConnector / Get-OutboundConnector list no HCW connector",
         _removal_left(_hcw_removal, ""), _removal_run(_hcw_removal)),
    Step("remove-cloud-org-relationship", H, "Remove the organization relationship in EXO",
         "Exchange Online", BOTH,
         _listed("Remove-OrganizationRelationship {q} -Confirm:$false", _cloud_relationships,
                 'Remove-OrganizationRelationship "O365 to On-Premises - <id>"'),
         "no free/busy sharing with on-premises is needed",
         "Get-OrganizationRelationship in EXO lists no O365 to On-Premises relationship",
         _cloud_relationships,
         _remover("cloud", "Remove-OrganizationRelationship", _cloud_relationships)),
    Step("remove-onprem-org-relationship", H,
         "Remove the on-premises organization relationship", "on-premises Exchange", BOTH,
         _listed("Remove-OrganizationRelationship {q} -Confirm:$false", _onprem_relationships,
                 'Remove-OrganizationRelationship "On-premises to O365 - <id>"'),
         "the Exchange Online side is removed",
         "Get-OrganizationRelationship lists no On-premises to O365 relationship",
         _onprem_relationships,
         _remover("onprem", "Remove-OrganizationRelationship", _onprem_relationships)),
    Step("remove-send-connector", H, "Remove the HCW send connector", "on-premises Exchange",
         BOTH,
         _listed("Remove-SendConnector {q} -Confirm:$false", _send_connectors,
                 'Remove-SendConnector "Outbound to Office 365 - <id>"'),
         "no mailbox is left on-premises to send to Exchange Online",
         "Get-SendConnector lists no Outbound to Office 365 connector",
         _send_connectors, _remover("onprem", "Remove-SendConnector", _send_connectors)),
    Step("clear-receive-tls", H, "Clear the HCW TLS setting on the receive connector",
         "on-premises Exchange", BOTH,
         _listed("Set-ReceiveConnector {q} -TlsDomainCapabilities $null", _tls_left,
                 "Set-ReceiveConnector <Default Frontend> -TlsDomainCapabilities $null"),
         "Exchange Online no longer delivers to on-premises",
         "no receive connector has mail.protection.outlook.com:AcceptCloudServicesMail",
         _tls_left, _clear_tls),
    Step("remove-hybrid-remote-domains", H, "Remove the HCW remote domains",
         "on-premises Exchange", (SOA,),
         _listed("Remove-RemoteDomain {q} -Confirm:$false", _hybrid_remote_domains,
                 'Remove-RemoteDomain "Hybrid Domain - <tenant>.mail.onmicrosoft.com"'),
         "the server is being uninstalled: no on-premises recipient management remains",
         "Get-RemoteDomain lists no Hybrid Domain", _hybrid_remote_domains,
         _remover("onprem", "Remove-RemoteDomain", _hybrid_remote_domains)),
    Step("keep-coexistence-remote-domain", H, "Keep the coexistence remote domain",
         "on-premises Exchange", (TOOLS,),
         _listed("Set-RemoteDomain {q} -TargetDeliveryDomain $true", _coexistence_left,
                 "Get-RemoteDomain Hybrid* | fl DomainName,TargetDeliveryDomain (already set)"),
         "the Management Tools create remote mailboxes with <tenant>.mail.onmicrosoft.com "
         "target addresses",
         "the coexistence domain exists with TargetDeliveryDomain True",
         _coexistence_left, _keep_coexistence),
    Step("disable-federated-org-id", H, "Disable the federated organization identifier",
         "on-premises Exchange", BOTH,
         _const("Set-FederatedOrganizationIdentifier -Enabled $false"),
         "the organization relationships are removed",
         "Get-FederatedOrganizationIdentifier shows Enabled False",
         _fed_id_left, _disable_fed_id),
    Step("remove-federation-trust", H, "Remove the federation trust", "on-premises Exchange",
         BOTH,
         _listed("Remove-FederationTrust {q} -Confirm:$false", lambda s: names(s.fed_trusts),
                 'Remove-FederationTrust "Microsoft Federation Gateway"'),
         "no organization relationship or enabled federated organization identifier uses it",
         "Get-FederationTrust lists nothing", lambda s: names(s.fed_trusts),
         _remover("onprem", "Remove-FederationTrust", lambda s: names(s.fed_trusts))),
    Step("remove-federation-certificate", H, "Remove the federation certificate", "host",
         BOTH,
         _listed("Remove-ExchangeCertificate -Thumbprint {q} -Confirm:$false",
                 _federation_certs, "(Get-ExchangeCertificate | ? Subject -eq "
                 '"CN=Federation").Thumbprint | Remove-ExchangeCertificate'),
         "the federation trust is removed",
         "Get-ExchangeCertificate lists no CN=Federation certificate",
         _federation_certs, _remove_federation_certs),
    Step("remove-oauth-key-credential", H,
         "Remove the hybrid OAuth key from the Exchange Online service principal", "Entra ID",
         BOTH,
         _const("Remove the keyCredential of the Office 365 Exchange Online service principal "
                f"(appId {EXO_APP_ID}) whose value is the certificate of "
                "(Get-AuthConfig).CurrentCertificateThumbprint (Graph: PATCH "
                "/servicePrincipals/{id} keyCredentials)"),
         "the intra-organization connectors are disabled",
         "no keyCredential on the principal matches the auth certificate",
         lambda s: [f"keyCredential {prop(k, 'keyId')}" for k in _oauth_keys(s)],
         _remove_oauth_key),
    Step("disable-auth-servers", H, "Disable the ACS/EvoSTS auth servers and the EXO partner "
         "application", "on-premises Exchange", BOTH,
         _const("Get-AuthServer | ? Name -like 'ACS*','EvoSts*' | Set-AuthServer -Enabled "
                "$false; Set-PartnerApplication 'Exchange Online' -Enabled $false"),
         "OAuth to Exchange Online is no longer used", "they show Enabled False",
         _auth_left, _disable_auth),
    Step("remove-hybrid-agent", H, "Remove the Hybrid Agent (Modern Hybrid)",
         "Exchange Online and host", BOTH,
         lambda s: _quote([str(prop(a, "AppId")) for a in s.hybrid_apps],
                          "Remove-HybridApplication -AppId {q}", "Remove-HybridApplication "
                          "(none registered)") + f"; uninstall {HYBRID_SERVICE}",
         "mailbox moves and free/busy through the agent are over",
         "Get-HybridApplication lists nothing and the agent's service is gone",
         _agent_left, _remove_agent),
    Step("remove-hybrid-configuration", H, "Remove the hybrid configuration object",
         "on-premises Exchange", BOTH, _const("Remove-HybridConfiguration -Confirm:$false"),
         "the rest of the hybrid configuration is cleaned up (it stops the HCW recreating it)",
         "Get-HybridConfiguration returns nothing", lambda s: names(s.hybrid_config),
         lambda e, s: (e.onprem("Remove-HybridConfiguration", Confirm=False), "removed")[1]),
    Step("uninstall-exchange", SRV, "Uninstall Exchange Server from the last server", "host",
         (SOA,),
         lambda s: f"on {s.last_server}: Setup.exe /IAcceptExchangeServerLicenseTerms_"
         "DiagnosticDataOFF /Mode:Uninstall",
         "no mailbox of any kind is left on its databases, the hybrid cleanup is done",
         "the host reports Uninstalled and Get-ExchangeServer lists no server",
         _uninstall_left, _uninstall),
    Step("shut-down-server", SRV, "Shut the last server down (never uninstall it)", "host",
         (TOOLS,), lambda s: f"Stop-Computer -ComputerName {s.last_server}",
         "the Management Tools are installed elsewhere and nothing else uses the server",
         "the host reports ShutDown", _shutdown_left, _shutdown),
    Step("remove-stale-cloud-objects", POST,
         "Remove EXO connectors and transport rules that still reference on-premises",
         "Exchange Online", BOTH,
         _removal_command(stale_cloud_objects, "Get-InboundConnector; Get-OutboundConnector; "
                          "Get-TransportRule (nothing stale)"), "the server is gone",
         "no connector or transport rule names an on-premises host",
         _removal_left(stale_cloud_objects, "connector "), _removal_run(stale_cloud_objects)),
    Step("confirm-writeback", WB, "Run a writeback cycle without the server", "writeback",
         BOTH, _const("exwb cycle --mode delta"),
         "the decommission steps are done",
         "the cycle finishes with no failures (cloud edits still reach AD)",
         lambda s: None, _confirm_writeback),
)  # fmt: skip


def steps_for(path: str) -> list[Step]:
    return [s for s in STEPS if path in s.paths]


def step_ids() -> list[str]:
    return [s.id for s in STEPS]
