"""The preconditions of retiring the last Exchange Server, as blockers with their remedies.

Each check reads a `Survey` (no network) and returns a `Blocker` or None. Blockers hold for
both paths unless a check says otherwise; the plan cannot run while any remains. Sources:
reference section 3 (Microsoft's decommission guides and the Management Tools article).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from harness.decommission.estate import Survey, mail_domains, names, prop

EXAMPLES = 10
SOA_AWARE_BUILD = "2.5.190.0"
PATHS = ("soa-uninstall", "management-tools")


@dataclass(frozen=True, slots=True)
class Blocker:
    """Something that must change before the plan can run."""

    code: str
    title: str
    count: int
    examples: tuple[str, ...]
    source: str  # where it was found: the cmdlet, API or lookup
    remedy: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _blocker(code: str, title: str, objs: list[str], source: str, remedy: str) -> Blocker:
    return Blocker(code, title, len(objs), tuple(objs[:EXAMPLES]), source, remedy)


def onprem_mailboxes(s: Survey, path: str) -> Blocker | None:
    if not s.mailboxes:
        return None
    return _blocker(
        "OnPremMailboxes",
        f"{len(s.mailboxes)} mailbox(es) still on the on-premises server",
        names(s.mailboxes),
        "on-premises Get-Mailbox -ResultSize Unlimited",
        "Move them to Exchange Online (New-MigrationBatch or New-MoveRequest -Remote) and "
        "complete the moves; a DiscoverySearchMailbox has nothing to move: Disable-Mailbox it. "
        "Then run the plan again.",
    )


def arbitration_mailboxes(s: Survey, path: str) -> Blocker | None:
    if not s.arbitration:
        return None
    return _blocker(
        "ArbitrationMailboxes",
        f"{len(s.arbitration)} arbitration or system mailbox(es) still on the server",
        names(s.arbitration),
        "on-premises Get-Mailbox -Arbitration",
        "Get-Mailbox -Arbitration | Disable-Mailbox -Arbitration "
        "-DisableLastArbitrationMailboxAllowed (Setup refuses to remove a server whose "
        "database still holds them; the Management Tools path disables them too).",
    )


def public_folders(s: Survey, path: str) -> Blocker | None:
    remote = str(prop(s.org_config, "PublicFoldersEnabled", "")) == "Remote"
    if not remote and not s.public_folder_mailboxes:
        return None
    found = (
        [f"PublicFoldersEnabled = {prop(s.org_config, 'PublicFoldersEnabled')}"] if remote else []
    )
    found += names(s.public_folder_mailboxes)
    return _blocker(
        "PublicFoldersNotMigrated",
        "public folders are still served from on-premises",
        found,
        "EXO Get-OrganizationConfig | fl PublicFoldersEnabled; on-premises Get-Mailbox "
        "-PublicFolder",
        "Migrate the public folders to Exchange Online (or remove them), then "
        "Set-OrganizationConfig -PublicFoldersEnabled Local. Pointing Autodiscover to Exchange "
        "Online first breaks hybrid public folder access.",
    )


def _points_to_exo_mx(values: list[str]) -> bool:
    hosts = [v.split()[-1].rstrip(".").casefold() for v in values if v.split()]
    return bool(hosts) and all(h.endswith(".mail.protection.outlook.com") for h in hosts)


def mx_records(s: Survey, path: str) -> Blocker | None:
    wrong = [
        f"{d}: MX {', '.join(s.dns.get(d, {}).get('MX') or ['(none)'])}"
        for d in mail_domains(s.accepted_domains)
        if not _points_to_exo_mx(s.dns.get(d, {}).get("MX", []))
    ]
    if not wrong:
        return None
    return _blocker(
        "MxNotExchangeOnline",
        f"{len(wrong)} domain(s) do not deliver mail to Exchange Online",
        wrong,
        "DNS MX lookup of each accepted domain",
        "Point each domain's MX record to <domain-with-dashes>.mail.protection.outlook.com "
        "(priority 0) in public DNS and wait for the old TTL to pass.",
    )


def autodiscover_records(s: Survey, path: str) -> Blocker | None:
    wrong = []
    for d in mail_domains(s.accepted_domains):
        values = [v.rstrip(".").casefold() for v in s.dns.get(d, {}).get("autodiscover", [])]
        if values != ["autodiscover.outlook.com"]:
            wrong.append(f"autodiscover.{d}: {', '.join(values) or '(none)'}")
    if not wrong:
        return None
    return _blocker(
        "AutodiscoverNotExchangeOnline",
        f"{len(wrong)} Autodiscover record(s) do not point to Exchange Online",
        wrong,
        "DNS CNAME lookup of autodiscover.<domain>",
        "Make autodiscover.<domain> a CNAME to autodiscover.outlook.com in internal and external "
        "DNS (after the public folders are migrated).",
    )


def smtp_relay(s: Survey, path: str) -> Blocker | None:
    if not s.relay:
        return None
    found = [
        f"{prop(r, 'clientHostname')} ({prop(r, 'clientIp')}) as {prop(r, 'mailFrom')}"
        for r in s.relay
    ]
    return _blocker(
        "SmtpRelayInUse",
        f"{len(s.relay)} device(s) or application(s) still relay mail through the server",
        found,
        f"SMTP receive protocol log of {s.last_server} (last 30 days)",
        "Repoint them to Exchange Online (an inbound connector for SMTP relay, direct send or "
        "SMTP AUTH client submission). While they need the server, keep it (Microsoft: don't "
        "remove the last server while it is used for SMTP relay).",
    )


def not_cloud_managed(s: Survey, path: str) -> Blocker | None:
    if not s.not_cloud_managed:
        return None
    return _blocker(
        "MailboxesNotCloudManaged",
        f"{len(s.not_cloud_managed)} dir-synced mailbox(es) still have their Exchange "
        "attributes managed on-premises",
        [str(prop(m, "UserPrincipalName") or prop(m, "Name")) for m in s.not_cloud_managed],
        'EXO Get-Mailbox -Filter "IsDirSynced -eq $true -and IsExchangeCloudManaged -eq $false"',
        "Transfer the source of authority: Set-Mailbox <id> -IsExchangeCloudManaged $true (or "
        "Set-OrganizationConfig -ExchangeAttributesCloudManagedByDefault $true for all), then "
        "let writeback run a cycle.",
    )


def groups_and_contacts(s: Survey, path: str) -> Blocker | None:
    objs = [f"group {prop(g, 'Name')}" for g in s.groups]
    objs += [f"contact {prop(c, 'Name')}" for c in s.contacts]
    if not objs:
        return None
    return _blocker(
        "GroupsOrContactsWithoutSoa",
        f"{len(s.groups)} group(s) and {len(s.contacts)} contact(s) are still mastered on-premises",
        objs,
        "EXO Get-DistributionGroup / Get-MailContact where IsDirSynced",
        "Transfer each object's source of authority to the cloud: PATCH "
        "/groups/{id}/onPremisesSyncBehavior (or /contacts/{id}/...) with "
        '{"isCloudManaged": true}. Without the server their Exchange attributes can no longer '
        "be edited with supported tools.",
    )


def _build(text: str) -> tuple[int, ...]:
    try:
        parts = tuple(int(p) for p in text.split("."))
    except ValueError:
        return (0,)
    return parts + (0,) * (4 - len(parts))


def connect_build(s: Survey, path: str) -> Blocker | None:
    version = str(prop(s.sync_host, "version", "") or "")
    if s.sync_host is not None and _build(version) >= _build(SOA_AWARE_BUILD):
        return None
    found = [f"{prop(s.sync_host, 'name')}: {version}"] if s.sync_host else ["no sync host found"]
    return _blocker(
        "ConnectBuildTooOld",
        f"Entra Connect Sync is older than {SOA_AWARE_BUILD}",
        found,
        "the Entra Connect Sync host's installed build",
        f"Upgrade Entra Connect Sync to {SOA_AWARE_BUILD} or later: older builds push Exchange "
        "attributes of cloud-managed mailboxes from AD and revert cloud edits.",
    )


def writeback_job(s: Survey, path: str) -> Blocker | None:
    # Read with .get: a survey may carry a partial status (an older state file, a test's).
    status = s.job.get("status") if s.job else None
    code = status.get("code", "NotRun") if status else "NotRun"
    last = status.get("lastExecution") if status else None
    state = last.get("state") if last else None
    if code == "Active" and state == "Succeeded":
        return None
    why = f"job {code}" + (f", last run {state}" if state else ", never run")
    quarantine = status.get("quarantine") if status else None
    if quarantine:
        why += f" ({quarantine.get('reason')})"
    return _blocker(
        "WritebackJobUnhealthy",
        "the Exchange attribute writeback job is not healthy",
        [why],
        "exwb status (the job's synchronizationJob status)",
        "Run `exwb status` to see why, fix it, and run `exwb cycle` until the last run "
        "succeeds: after decommission, writeback is the only way cloud edits reach AD.",
    )


def other_servers(s: Survey, path: str) -> Blocker | None:
    others = [n for n in names(s.servers) if n != s.last_server]
    if not others:
        return None
    return _blocker(
        "NotTheLastServer",
        f"{len(others)} other Exchange server(s) remain; this plan retires the last one",
        others,
        "on-premises Get-ExchangeServer",
        "Uninstall the other servers first (move their mailboxes and connectors), leaving "
        f"{s.last_server}.",
    )


def server_state(s: Survey, path: str) -> Blocker | None:
    if s.server_state != "ShutDown":
        return None
    return _blocker(
        "ServerNotRunning",
        f"{s.last_server} is shut down",
        [str(s.last_server)],
        "the server's host",
        f"Turn {s.last_server} on: the hybrid cleanup and Setup run on it.",
    )


CHECKS: tuple[Callable[[Survey, str], Blocker | None], ...] = (
    other_servers,
    server_state,
    onprem_mailboxes,
    arbitration_mailboxes,
    public_folders,
    mx_records,
    autodiscover_records,
    smtp_relay,
    not_cloud_managed,
    groups_and_contacts,
    connect_build,
    writeback_job,
)


def blockers(s: Survey, path: str) -> list[Blocker]:
    """Every blocker of `path`, in the order of the checks."""
    return [b for check in CHECKS if (b := check(s, path)) is not None]
