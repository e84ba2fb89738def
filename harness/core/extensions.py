"""Every behaviour the harness adds to, or assumes about, Microsoft's services: one registry.

The fakes and the engine follow Microsoft's documentation (docs/microsoft-facts.md). Where they
go beyond it, an `Extension` here says what the harness does, on which side, why (Microsoft
documents nothing, the fact is unconfirmed, safety, a stand-in for an interface the harness
cannot use, a test aid, or a documented behaviour modelled in part), whether it happens unless
asked for, what turns it off or changes it, and where the docs explain it. The README's table
"Harness extensions and assumptions" is made from `EXTENSIONS` (`extensions_markdown`; rewrite
it with ``python docs/hooks.py --write-readme``), and `tests/core/test_extensions.py` checks that
every control named here exists: each CLI flag in `exwb`'s parsers, each setting as a field of
its dataclass, each profile and scenario key in its loader, each docs link's page and heading.

Controls are named by text (module paths, flags), never imported: this is the bottom layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Side(StrEnum):
    ENGINE = "engine"
    GRAPH = "fake Graph"
    EXO = "fake EXO"
    AD = "fake AD"
    ONPREM = "on-prem"


class Why(StrEnum):
    UNDOCUMENTED = "Microsoft documents nothing"
    UNCONFIRMED = "unconfirmed fact"
    SAFETY = "safety"
    STAND_IN = "stand-in"  # for a private or unpublished Microsoft interface
    TEST_AID = "test aid"  # no counterpart in Microsoft's services
    SIMPLIFIED = "documented, modelled in part"


@dataclass(frozen=True, slots=True)
class Flag:
    """An `exwb` option: ``Flag("cycle", "--mass-change-threshold", "N")``."""

    command: str
    option: str
    value: str = ""

    def __str__(self) -> str:
        return f"`exwb {self.command} {self.option}{' ' + self.value if self.value else ''}`"


@dataclass(frozen=True, slots=True)
class Setting:
    """A field of a dataclass: ``Setting("mockservers.directory.service", "Limits", "...")``."""

    module: str
    cls: str
    field: str

    def __str__(self) -> str:
        return f"`{self.cls}.{self.field}` (`{self.module}`)"


@dataclass(frozen=True, slots=True)
class ProfileKey:
    """A key of an engine profile file (`harness.engine.rules.PROFILE_KEYS`)."""

    key: str
    value: str = ""

    def __str__(self) -> str:
        return f"profile `{self.key}:{' ' + self.value if self.value else ''}`"


@dataclass(frozen=True, slots=True)
class ScenarioKey:
    """A scenario's `engine` setting (``engine.NAME``) or step kind (``step.NAME``)."""

    path: str

    def __str__(self) -> str:
        section, _, name = self.path.partition(".")
        return f"scenario `{name}` step" if section == "step" else f"scenario `{self.path}`"


Control = Flag | Setting | ProfileKey | ScenarioKey


@dataclass(frozen=True, slots=True)
class Extension:
    """One behaviour beyond Microsoft's documentation."""

    name: str
    what: str
    sides: tuple[Side, ...]
    why: Why
    by_default: bool  # True: it happens unless turned off; False: only when asked for
    controls: tuple[Control, ...]  # what turns it off or changes it (empty: nothing does)
    docs: str  # "docs/page.md#heading" (or "README.md#heading")
    note: str = ""  # how to avoid it when nothing turns it off, or what is left to do


E, S, W = Extension, Side, Why
CYCLE, SERVE = "cycle", "serve"
AD_LIMITS = ("mockservers.directory.service", "Limits")

EXTENSIONS: tuple[Extension, ...] = (
    # --- the writeback engine ------------------------------------------------------------
    E(
        "Mass-change guard",
        "a cycle that would change more than N objects stops before its first export; the job "
        "shows Quarantine with reason `MassChangeThresholdExceeded`, which is not one of Graph's "
        "quarantine reasons",
        (S.ENGINE,),
        W.SAFETY,
        False,
        (
            Flag(CYCLE, "--mass-change-threshold", "N"),
            Flag(CYCLE, "--allow-mass-change"),
            ScenarioKey("engine.mass_change_threshold"),
            ScenarioKey("engine.allow_mass_change"),
            Setting("harness.engine.cycle", "CycleOptions", "mass_change_threshold"),
        ),
        "docs/engine.md#the-writeback-engine-exwb-cycle-exwb-verify-and-exwb-status",
        "the real job has none: Cloud Sync's accidental-deletion threshold counts deletions",
    ),
    E(
        "Match rule",
        "a cloud object's AD user is the one whose mS-DS-ConsistencyGuid is the bytes of its "
        "onPremisesImmutableId; the job's own anchor is not documented",
        (S.ENGINE,),
        W.UNCONFIRMED,
        True,
        (ProfileKey("match", "objectGUID"), ProfileKey("match", "msDS-ExternalDirectoryObjectId")),
        "docs/engine.md#the-match-rule",
        "`exwb preflight` and scenario selections still find AD users by mS-DS-ConsistencyGuid",
    ),
    E(
        "Reading Exchange state through Graph",
        "the engine imports Graph's `users/delta` with the `exwbExchange` property for "
        "IsExchangeCloudManaged and the other Exchange values; the real job reads Exchange "
        "Online through a channel Microsoft does not publish",
        (S.ENGINE, S.GRAPH),
        W.STAND_IN,
        True,
        (),
        "docs/engine.md#the-writeback-engine-exwb-cycle-exwb-verify-and-exwb-status",
        "a real tenant's Graph answers 400 to `exwbExchange`: the engine needs the fake cloud",
    ),
    E(
        "Preview profile's mailbox limit",
        "the `preview` profile warns above 200,000 cloud-managed mailboxes; no source documents "
        "a cap for the preview (the GA's 600,000 is documented)",
        (S.ENGINE,),
        W.UNCONFIRMED,
        True,
        (),
        "docs/engine.md#the-writeback-engine-exwb-cycle-exwb-verify-and-exwb-status",
        "a warning only; the `ga` profile uses the documented 600,000",
    ),
    E(
        "Quarantine thresholds scaled to the tenant",
        "below 200,000 objects the documented escrow thresholds (5,000 / 40,000 / 60,000) "
        "scale with the tenant, never below 10, so a lab tenant can quarantine",
        (S.ENGINE,),
        W.UNDOCUMENTED,
        True,
        (
            Flag(CYCLE, "--quarantine-min-failures", "N"),
            ScenarioKey("engine.quarantine_min_failures"),
            Setting("harness.engine.cycle", "CycleOptions", "quarantine"),
        ),
        "docs/engine.md#the-writeback-engine-exwb-cycle-exwb-verify-and-exwb-status",
    ),
    E(
        "The served job's schedule",
        "`exwb serve --writeback` runs the job on the harness clock: the first cycle at once, "
        "then one interval after each began; a paused or disabled job is looked at again "
        "every interval; without --writeback, `exwb cycle` runs when run",
        (S.ENGINE,),
        W.SIMPLIFIED,
        False,
        (
            Flag(SERVE, "--writeback"),
            Flag(SERVE, "--interval", "DURATION"),
            Flag(SERVE, "--job-state", "DIR"),
        ),
        "docs/engine.md#the-job-as-a-service-exwb-serve-writeback",
        "the service's own timing within its 20 minutes (and its slower practice) is not modelled",
    ),
    E(
        "Graph's synchronization API where it is not documented for this job",
        "one job per service principal (a second create answers 409); a schema PUT or PATCH "
        "applies the scoping filters only (the mappings are the profile's); groupFilter groups "
        "are read as AD groups, direct members only; the served job's service principal is "
        "named after the AD domain; the job id's parts are derived from its state folder; "
        "a skipped provisionOnDemand that is neither in-sync nor out of scope answers "
        "`EntrySynchronizationSkipped`",
        (S.GRAPH, S.ENGINE),
        W.UNDOCUMENTED,
        True,
        (Flag(SERVE, "--job-profile", "P"),),
        "docs/engine.md#graphs-synchronization-api",
    ),
    E(
        "A disabled job's status code",
        "after 4 weeks in quarantine the job shows `schedule.state` Disabled and keeps "
        "`status.code` Quarantine with its quarantine (nextAttempt null); Graph's status codes "
        "have no disabled value and Microsoft does not say which one a disabled job shows",
        (S.ENGINE,),
        W.UNCONFIRMED,
        True,
        (Setting("harness.engine.health", "QuarantineBackoff", "disabled_code"),),
        "docs/engine.md#the-job-over-time-escrowspruned-the-quarantine-series-disabled",
    ),
    E(
        "The quarantine back-off curve",
        "a quarantined job's next cycle comes after the interval times 2 to the number of "
        "quarantined cycles in a row, up to once a day; Microsoft documents only that cycles "
        "slow down gradually to once a day and that the job is disabled after 4 weeks",
        (S.ENGINE,),
        W.UNDOCUMENTED,
        True,
        (
            Setting("harness.engine.health", "QuarantineBackoff", "factor"),
            Setting("harness.engine.health", "QuarantineBackoff", "ceiling"),
            Setting("harness.engine.health", "QuarantineBackoff", "disable_after"),
        ),
        "docs/engine.md#the-writeback-engine-exwb-cycle-exwb-verify-and-exwb-status",
    ),
    E(
        "A source anchor two AD users hold",
        'the object is a Failure with error code 0, "source anchor held by more than one AD '
        "object\", and neither user is written; it is logged with Graph's "
        "`DuplicateTargetEntries` error code (what this job logs is not documented)",
        (S.ENGINE,),
        W.UNDOCUMENTED,
        True,
        (),
        "docs/engine.md#the-match-rule",
    ),
    E(
        "Provisioning-log details Graph leaves open",
        "records are Graph's provisioningObjectSummary; where Graph does not say, the error "
        "code is named after the LDAP result (documented names where one fits: "
        "InsufficientRights, InvalidAnchor, Timeout) with the raw code in the failing step's "
        "`details.LdapResultCode`, a skip's reason is in its step's `details` (`SkipReason`, "
        "`Reason`), modified values are JSON arrays in text, provision on demand is initiated "
        "by the calling app, and `errorInformation` is spelt as Graph's metadata spells it "
        "(the resource page says `errorInfo`); `exwb logs` CSV headers are exwb's own",
        (S.ENGINE,),
        W.UNDOCUMENTED,
        True,
        (),
        "docs/engine.md#the-provisioning-log",
    ),
    E(
        "Provisioning-log paging",
        "`GET /v1.0/auditLogs/provisioning` pages 1,000 records by default and at most (the "
        "sign-in log's size; this list's is not documented), only newest first "
        "(`$orderby=activityDateTime desc`), and reads the served job's state folder, not a "
        "tenant-wide 30-day store",
        (S.GRAPH,),
        W.UNDOCUMENTED,
        True,
        (),
        "docs/engine.md#the-job-as-a-service-exwb-serve-writeback",
    ),
    E(
        "Values written as Exchange Online holds them",
        "proxyAddresses are written as they are (X500 and onmicrosoft.com addresses included, "
        "no transform), a case-only change of a value is written, and two values for a "
        "single-valued target are refused by the engine before AD sees them",
        (S.ENGINE,),
        W.UNCONFIRMED,
        True,
        (ProfileKey("mappings"), ProfileKey("remove")),
        "docs/engine.md#profile-files",
        "an expression mapping can transform a value",
    ),
    E(
        "LDAP retries",
        "busy (51), unavailable (52) and a dropped connection are resent with exponential "
        "backoff, up to 5 tries per operation, 64 modifies in flight",
        (S.ENGINE,),
        W.UNDOCUMENTED,
        True,
        (Setting("harness.engine.cycle", "CycleOptions", "window"),),
        "docs/engine.md#the-writeback-engine-exwb-cycle-exwb-verify-and-exwb-status",
    ),
    E(
        "First-cycle preview and parity report",
        "`exwb cycle --mode dry-run` predicts what the first cycle would write and what AD "
        "would refuse; `exwb verify` compares AD with the cloud per attribute; the real job "
        "offers neither",
        (S.ENGINE,),
        W.TEST_AID,
        False,
        (Flag(CYCLE, "--mode", "dry-run"),),
        "docs/engine.md#the-writeback-engine-exwb-cycle-exwb-verify-and-exwb-status",
    ),
    E(
        "Job status extras",
        "`exwb status` adds to Graph's synchronizationJob shape the profile, its mailbox limit, "
        "the report warnings and escrow examples; the state is a folder, not Graph's job",
        (S.ENGINE,),
        W.TEST_AID,
        True,
        (Flag("status", "--state-dir", "D"),),
        "docs/engine.md#the-writeback-engine-exwb-cycle-exwb-verify-and-exwb-status",
    ),
    E(
        "Entra Connect forward-sync model",
        "`exwb forward` reads both sides in full every cycle, creates and deletes nothing, has "
        "no export deletion threshold and no staging mode",
        (S.ENGINE,),
        W.SIMPLIFIED,
        False,
        (Flag("forward", "--connect-build", "B"),),
        "docs/engine.md#forward-sync-entra-connect-model-exwb-forward",
    ),
    # --- the fake Graph --------------------------------------------------------------------
    E(
        "`exwbExchange` Graph property",
        "isExchangeCloudManaged, recipientTypeDetails, hiddenFromAddressListsEnabled and "
        "extensionCustomAttribute1..5 on users, returned only when named in `$select`; real "
        "Graph v1.0 exposes none of them and answers 400",
        (S.GRAPH,),
        W.STAND_IN,
        False,
        (),
        "docs/fake-cloud.md#graph-v10-users",
        "opt-in per request: leave it out of `$select`",
    ),
    E(
        "Directory sync export endpoint",
        "`POST /exwb/dirsync/{tenant}/export`, callable only by the `exwb-connect` app (a "
        "Directory.Synchronization role of the harness), stands in for Entra Connect's "
        "private sync web service; its errors and throttle cost are modelled on Graph's",
        (S.GRAPH,),
        W.STAND_IN,
        True,
        (),
        "docs/engine.md#forward-sync-entra-connect-model-exwb-forward",
    ),
    E(
        "Simulated clock and its admin route",
        "with `--clock simulated` the fakes and the engine run on simulated time (whenChanged, "
        "token lifetimes, delta-token age, log times), moved by `POST /exwb/clock/advance` "
        "(role `Exwb.Clock.ReadWrite`, the read-write app's only; `exwb clock --advance` "
        "calls it); `GET /exwb/clock` reads it",
        (S.GRAPH, S.AD, S.ENGINE),
        W.TEST_AID,
        False,
        (Flag(SERVE, "--clock", "simulated"), Flag(SERVE, "--clock-start", "ISO")),
        "docs/engine.md#the-harness-clock-wall-or-simulated-time",
        "clients' own token caches (MSAL) stay on their wall clock",
    ),
    E(
        "No throttling",
        "the fake Graph and EXO answer without throttling unless asked; Graph always throttles",
        (S.GRAPH, S.EXO),
        W.SIMPLIFIED,
        True,
        (Flag(SERVE, "--throttle", "documented"), Flag(SERVE, "--throttle", "RU/WRITES")),
        "docs/fake-cloud.md#routes",
        "for speed; `documented` applies Graph's large-tenant limits",
    ),
    E(
        "onPremisesImmutableId equality without an advanced query",
        "`$filter=onPremisesImmutableId eq '...'` works without `ConsistencyLevel: eventual` "
        "and `$count`, which Graph's table lists it as needing",
        (S.GRAPH,),
        W.SIMPLIFIED,
        True,
        (),
        "docs/fake-cloud.md#queries-on-users",
    ),
    E(
        "Query bounds and collation",
        "a `$filter` is bounded to 16,384 characters, 500 comparisons and 40 levels (400 "
        "`Request_UnsupportedQuery`, a modelled text); `$orderby` sorts by code point of the "
        "case-folded value, not Graph's culture-aware collation; properties the model lacks "
        "cannot be filtered on",
        (S.GRAPH,),
        W.UNDOCUMENTED,
        True,
        (),
        "docs/fake-cloud.md#queries-on-users",
    ),
    E(
        "Modelled Graph error texts",
        "the texts of a malformed `$batch`, an over-complex filter, a malformed `$search` and a "
        "refused service principal change are modelled, not captured (Graph documents the "
        "status, not the message)",
        (S.GRAPH,),
        W.UNDOCUMENTED,
        True,
        (),
        "docs/fake-cloud.md#json-batching",
    ),
    E(
        "Delta round watermark",
        "a delta round's watermark is taken when the round starts, so an edit made while a "
        "round is paged shows in the next round",
        (S.GRAPH,),
        W.UNDOCUMENTED,
        True,
        (),
        "docs/fake-cloud.md#graph-v10-users",
    ),
    E(
        "Proxy headers",
        "links (`@odata.nextLink`, `deltaLink`, a 410's `Location`) honour `X-Forwarded-Host` / "
        "`X-Forwarded-Proto`, a proxy convention; Graph uses only the host called",
        (S.GRAPH, S.EXO),
        W.TEST_AID,
        True,
        (),
        "docs/fake-cloud.md#behind-a-tls-proxy-or-under-a-name-of-your-own",
        "only when a client sends the headers",
    ),
    E(
        "Tokens and sign-in",
        "tokens verify against the JWKS (Graph's real ones carry a `nonce` that prevents it); "
        "a client assertion's wrong `aud` answers AADSTS50027 (unconfirmed), its `jti` is not "
        "checked for replay; only the client-credentials grant is served",
        (S.GRAPH, S.EXO),
        W.UNCONFIRMED,
        True,
        (),
        "docs/connect-your-app.md#entras-sign-in-surface",
    ),
    E(
        "Local CA and client certificates",
        "every service speaks TLS with a certificate from a local CA (`ca_file`), and the apps' "
        "client certificates (`client_certificate_file`) stand in for a public CA and a "
        "certificate uploaded to an app registration",
        (S.GRAPH, S.EXO, S.AD, S.ONPREM),
        W.STAND_IN,
        True,
        (Flag(SERVE, "--tls-cert", "PEM"), Flag(SERVE, "--tls-key", "PEM")),
        "docs/connect-your-app.md#trust-the-ca-one-variable-per-ecosystem",
    ),
    # --- the fake EXO ----------------------------------------------------------------------
    E(
        "The EXO admin API's shape",
        "`POST /adminapi/beta/{tenant}/InvokeCommand` with `CmdletInput` and `@odata.nextLink` "
        "paging, as community scripts call it; Microsoft documents no such API",
        (S.EXO,),
        W.UNCONFIRMED,
        True,
        (),
        "docs/fake-cloud.md#exo-admin-api-cmdlets",
    ),
    E(
        "Get-/Remove-HybridApplication",
        "EXO admin cmdlets standing for the HybridManagement module's calls on the Hybrid Agent",
        (S.EXO,),
        W.STAND_IN,
        True,
        (),
        "docs/fake-cloud.md#exo-admin-api-cmdlets",
    ),
    E(
        "Set-Mailbox validation",
        "one primary `SMTP:` address, the prefixes SMTP, X500, X400, SIP, EUM, tenant-wide "
        'uniqueness and 1,024 characters per custom attribute; Exchange\'s "in use" refusals '
        "are modelled texts",
        (S.EXO,),
        W.UNCONFIRMED,
        True,
        (),
        "docs/fake-cloud.md#exo-admin-api-cmdlets",
    ),
    # --- the fake AD -----------------------------------------------------------------------
    E(
        "Fixed DSIDs",
        "diagnostics follow AD's shapes, but each error's DSID is one fixed value per error, "
        "not AD's build-specific one",
        (S.AD,),
        W.UNDOCUMENTED,
        True,
        (),
        "docs/fake-ad.md#ldap-support-matrix",
        "match on the Win32 code and problem name, as admins grep for them",
    ),
    E(
        "sizeLimit in a paged search",
        "a client's sizeLimit bounds each page's request (`per-request`), so a client that "
        "sends it with every page reads the whole result; Microsoft does not say how AD counts it",
        (S.AD,),
        W.UNCONFIRMED,
        True,
        (Setting(*AD_LIMITS, "paged_size_limit"),),
        "docs/fake-ad.md#ldap-support-matrix",
        "`whole-search` counts every page together, as slapd does",
    ),
    E(
        "DirSync rights of the writeback account",
        "DirSync without LDAP_DIRSYNC_OBJECT_SECURITY needs the replicating-changes right: the "
        "admin holds it, the writeback account does not (Cloud Sync's installer grants its gMSA "
        "the password hash sync rights with its default permission set)",
        (S.AD,),
        W.SIMPLIFIED,
        True,
        (Setting("mockservers.directory.acl", "AccessPolicy", "writeback_replicates"),),
        "docs/fake-ad.md#ldap-support-matrix",
        "`True` grants the writeback account the right, as the installer's default set does",
    ),
    E(
        "Continuation references",
        "a one-level or subtree search reaching a naming context it does not enter ends with a "
        "reference to it; `??base` on one-level references and their place in a paged search "
        "follow RFC 4511 and Samba, unconfirmed for Windows",
        (S.AD,),
        W.UNCONFIRMED,
        True,
        (Setting(*AD_LIMITS, "continuation_references"),),
        "docs/fake-ad.md#ldap-support-matrix",
        "`False` sends none, for a client that cannot take them",
    ),
    E(
        "Notification backlog",
        "a change-notification reader that falls more than 4 MiB behind loses its connection "
        "(Notice of Disconnection, 52); Microsoft documents no such bound",
        (S.AD,),
        W.UNDOCUMENTED,
        True,
        (Setting(*AD_LIMITS, "notification_backlog"),),
        "docs/fake-ad.md#ldap-support-matrix",
        "a larger number lets a slower reader fall further behind",
    ),
    E(
        "Tombstones without the Recycle Bin",
        "a delete leaves a tombstone as AD does with the Recycle Bin off (its default); there is "
        "no Recycle Bin, no undelete and no garbage collection after the tombstone lifetime",
        (S.AD,),
        W.SIMPLIFIED,
        True,
        (),
        "docs/fake-ad.md#ldap-support-matrix",
    ),
    E(
        "Paged searches per connection",
        "16 paged searches may be open on one connection (AD's MaxResultSetsPerConn default "
        "is not confirmed here)",
        (S.AD,),
        W.UNCONFIRMED,
        True,
        (Setting(*AD_LIMITS, "max_paged_searches_per_connection"),),
        "docs/fake-ad.md#ldap-support-matrix",
    ),
    E(
        "The writeback account's rights",
        "the Cloud Sync agent's gMSA may write only the 24 GA writeback attributes, on user "
        "objects below `OU=Corp` (a generated tenant) or the tenant folder's `writeback_ous`; "
        "the permissions the job needs are not documented",
        (S.AD,),
        W.UNCONFIRMED,
        True,
        (
            Setting("mockservers.runtime", "TenantFolder", "writable_ous"),
            Flag("import", "--writeback-ou", "DN"),
            Setting("mockservers.directory.acl", "AccessPolicy", "writeback_attributes"),
        ),
        "docs/fake-ad.md#the-fake-active-directory-exwb-serve",
        "without `--writeback-ou`, `exwb import` assumes the OUs holding the joined "
        "cloud-managed users and says so",
    ),
    E(
        "Schema ranges of Exchange attributes",
        "rangeUpper 1,024 for extensionAttribute1-10 and 2,048 for 11-15, 1,123 for "
        "proxyAddresses: the Exchange schema's values are unconfirmed (Graph documents 1,024)",
        (S.AD, S.ENGINE),
        W.UNCONFIRMED,
        True,
        (),
        "docs/fake-ad.md#what-the-fake-implements",
    ),
    E(
        "Exchange configuration classes",
        "the Exchange organisation's classes are the harness's own (Exchange's schema files are "
        "not bundled): they may hold any attribute and their parents are not checked; Exchange "
        "attributes are published as mayContain of `mailRecipient`",
        (S.AD,),
        W.SIMPLIFIED,
        True,
        (),
        "docs/fake-ad.md#what-the-fake-implements",
    ),
    E(
        "Unconfirmed AD answers",
        "a one-level or subtree search for tokenGroups that finds nothing succeeds, a malformed "
        "range (`member;range=x-2`) is unwillingToPerform (53), and `<GUID=...>;<SID=...>;dn` "
        "is decided by the GUID: Samba's answers, Windows' undocumented",
        (S.AD,),
        W.UNCONFIRMED,
        True,
        (),
        "docs/fake-ad.md#what-the-fake-implements",
    ),
    E(
        "Sort collation",
        "server-side sort compares strings by Unicode case folding, not by AD's language "
        "collation; MaxTempTableSize is not applied",
        (S.AD,),
        W.SIMPLIFIED,
        True,
        (),
        "docs/fake-ad.md#what-the-fake-implements",
    ),
    E(
        "Indexes made while idle",
        "the ANR and initial-substring indexes are built when no request has arrived for a "
        "second, in slices, not at start-up nor on first use",
        (S.AD,),
        W.TEST_AID,
        True,
        (Setting("mockservers.directory.service", "DirectoryService", "warm_indexes"),),
        "docs/fake-ad.md#what-the-fake-implements",
        "only how soon an index exists changes, never an answer",
    ),
    E(
        "The generated tenant's anchors",
        "every synced user's mS-DS-ConsistencyGuid equals its objectGUID, as Entra Connect "
        "leaves it with mS-DS-ConsistencyGuid as the source anchor, and "
        "msDS-ExternalDirectoryObjectId is never stamped",
        (S.AD,),
        W.SIMPLIFIED,
        True,
        (),
        "docs/tenant.md#the-generated-tenant",
        "stamp `User_<id>` over LDAP (an `ad_edit` step) for the msDS-ExternalDirectoryObjectId "
        "match rule; a tenant knob is still to do",
    ),
    # --- the on-premises estate and the decommission ---------------------------------------
    E(
        "The on-premises estate API",
        "hosts, Exchange Setup, services, certificates, the SMTP receive log and DNS zones over "
        "HTTP (`onprem_url`) and an authoritative DNS server: the machines around the "
        "organisation, which have no Microsoft API",
        (S.ONPREM,),
        W.TEST_AID,
        True,
        (Flag(SERVE, "--onprem-port", "P"), Flag(SERVE, "--dns-port", "P")),
        "docs/onprem.md#the-on-premises-estate-hosts-api-and-dns",
    ),
    E(
        "Decommission order and Setup's cleanup",
        "the 2026 guide's step list and Setup's AD cleanup are not in any stored source; the "
        "order follows the older documented procedures, and an uninstall deletes the server's "
        "AD subtree and database",
        (S.ONPREM,),
        W.UNCONFIRMED,
        False,
        (Flag("decommission", "--path", "management-tools"), Flag("decommission", "--only", "S")),
        "docs/decommission.md#decommission-the-last-exchange-server-exwb-decommission",
    ),
    # --- every fake --------------------------------------------------------------------------
    E(
        "Fault plan",
        "LDAP busy, unavailable, drop, slow and HTTP throttle, unavailable, reset, an expired "
        "delta token, a truncated body, armed on demand; injected HTTP answers carry "
        "`x-exwb-fault`",
        (S.AD, S.GRAPH, S.EXO),
        W.TEST_AID,
        False,
        (Flag(SERVE, "--fault", "SPEC"), ScenarioKey("step.fault")),
        "docs/faults-and-state.md#faults",
    ),
    E(
        "Durable state",
        "without `--state-dir` a served tenant lives in memory and is gone on exit; with it, a "
        "journal of every acknowledged write survives kill -9",
        (S.AD, S.GRAPH, S.EXO, S.ONPREM),
        W.TEST_AID,
        False,
        (Flag(SERVE, "--state-dir", "D"), Flag(SERVE, "--compact")),
        "docs/faults-and-state.md#durable-state-state-dir",
    ),
    E(
        "Accounts and the endpoints file",
        "each tenant has an admin, the writeback gMSA (a password account here), a read-only "
        "`svc-lob-reader` and three apps (read-write, read-only, `exwb-connect`), with random "
        "secrets written to the endpoints file (mode 0600)",
        (S.AD, S.GRAPH, S.EXO, S.ONPREM),
        W.TEST_AID,
        True,
        (Flag(SERVE, "--endpoints-file", "F"),),
        "docs/fake-ad.md#the-fake-active-directory-exwb-serve",
    ),
    E(
        "Loopback only",
        "every server binds 127.0.0.1 unless another address is named (with a warning)",
        (S.AD, S.GRAPH, S.EXO, S.ONPREM),
        W.SAFETY,
        True,
        (Flag(SERVE, "--listen", "ADDRESS"),),
        "docs/security.md#security-and-guarantees",
    ),
    E(
        "Request log",
        "one JSON line per LDAP operation and HTTP call, without secrets",
        (S.AD, S.GRAPH, S.EXO, S.ONPREM),
        W.TEST_AID,
        False,
        (Flag(SERVE, "--log", "FILE"), Flag(SERVE, "-v")),
        "docs/connect-your-app.md#when-a-client-fails-the-request-log",
    ),
)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def extensions_markdown() -> str:
    """`EXTENSIONS` as the README's Markdown table, in registry order."""
    lines = [
        "| behaviour | side | why | by default | to turn it off or change it | see |",
        "|---|---|---|---|---|---|",
    ]
    for x in EXTENSIONS:
        controls = "; ".join(str(c) for c in x.controls) or "nothing"
        if x.note:
            controls += f" ({x.note})"
        page = x.docs.partition("#")[0]
        label = page.removeprefix("docs/").removesuffix(".md")
        cells = (
            f"**{x.name}**: {x.what}",
            ", ".join(s.value for s in x.sides),
            x.why.value,
            "on" if x.by_default else "off",
            controls,
            f"[{label}]({x.docs})",
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)
