"""Every error of the on-premises API, by name, in the same JSON envelope as the fake cloud's.

``{"error": {"code", "message", "details": [{"code", "message"}...]}}``: `details` lists the
failed prerequisite checks of a refused Setup run, empty otherwise. Texts that Windows or
Exchange Setup print are theirs (noted); the rest describe this API. Handlers raise these; none
spells an error text itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Final

REALM = 'Basic realm="exwb on-premises", charset="UTF-8"'


class OnpremError(Exception):
    """An HTTP error with a code and text; `headers` are extra response headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _bad_request(message: str) -> OnpremError:
    return OnpremError(400, "BadRequest", message)


# ------------------------------------------------------------------ HTTP (every route)
def internal_error() -> OnpremError:
    return OnpremError(500, "InternalServerError", "An internal error occurred.")


def no_such_resource(method: str, path: str) -> OnpremError:
    return OnpremError(404, "NotFound", f"No such resource: {method} {path}")


def method_not_allowed(method: str, allowed: Iterable[str]) -> OnpremError:
    return OnpremError(
        405,
        "MethodNotAllowed",
        f"The method {method} is not allowed here.",
        headers={"Allow": ", ".join(allowed)},
    )


def request_too_large() -> OnpremError:
    return OnpremError(413, "RequestEntityTooLarge", "The request body is too large.")


def invalid_json() -> OnpremError:
    return _bad_request("The request body is not valid JSON.")


# ------------------------------------------------------------------ sign-in (HTTP Basic)
def _unauthorized(message: str) -> OnpremError:
    return OnpremError(401, "Unauthorized", message, headers={"WWW-Authenticate": REALM})


def credentials_missing() -> OnpremError:
    return _unauthorized("Authentication is required (HTTP Basic, as the AD admin).")


def credentials_malformed() -> OnpremError:
    return _unauthorized("The Authorization header is not valid Basic credentials.")


def credentials_wrong() -> OnpremError:
    return _unauthorized("The user name or password is incorrect.")


def not_an_administrator(sam: str) -> OnpremError:
    return OnpremError(403, "Forbidden", f"Access is denied: {sam} is not an administrator.")


# ------------------------------------------------------------------ hosts
def host_not_found(name: str) -> OnpremError:
    return OnpremError(404, "HostNotFound", f"The host '{name}' was not found.")


def service_not_found(service: str, host: str) -> OnpremError:
    """Windows' ERROR_SERVICE_DOES_NOT_EXIST (1060), as sc.exe prints it."""
    return OnpremError(
        404,
        "ServiceNotFound",
        f"[SC] OpenService FAILED 1060: The specified service '{service}' does not "
        f"exist as an installed service on {host}.",
    )


def certificate_not_found(thumbprint: str, host: str) -> OnpremError:
    return OnpremError(
        404,
        "CertificateNotFound",
        f"The certificate with thumbprint {thumbprint} was not found on {host}.",
    )


def relay_client_not_found(client_ip: str, host: str) -> OnpremError:
    return OnpremError(
        404, "RelayClientNotFound", f"No client {client_ip} in the SMTP receive log of {host}."
    )


# ------------------------------------------------------------------ Setup
def setup_body() -> OnpremError:
    return _bad_request('The body must be {"Mode": "Uninstall"}.')


def setup_mode(mode: str) -> OnpremError:
    return _bad_request(f"Setup mode '{mode}' is not supported here; only Uninstall is.")


def exchange_not_installed(host: str) -> OnpremError:
    return OnpremError(
        409,
        "ExchangeNotInstalled",
        f"Setup can't continue: Exchange Server is not installed on {host}.",
    )


# Setup's own text for a database that still holds mailboxes (Exchange 2013 and later).
_MAILBOXES_TEXT: Final = (
    "Database '{db}': This mailbox database contains one or more mailboxes, mailbox plans, "
    "archive mailboxes, public folder mailboxes or arbitration mailboxes. To get a list of all "
    "mailboxes in this database, run the command Get-Mailbox -Database <Database ID>. To get a "
    "list of all public folder mailboxes in this database, run the command Get-Mailbox -Database "
    "<Database ID> -PublicFolder. To get a list of all arbitration mailboxes in this database, "
    "run the command Get-Mailbox -Database <Database ID> -Arbitration. To disable a "
    "non-arbitration mailbox so that you can delete the mailbox database, run the command "
    "Disable-Mailbox <Mailbox ID>. If this is the last server in the organization, run the "
    "command Disable-Mailbox <Mailbox ID> -Arbitration -DisableLastArbitrationMailboxAllowed to "
    "disable the arbitration mailbox."
)


def check_host_not_running(host: str) -> dict[str, str]:
    """A failed prerequisite check (an entry of `details`): the host is shut down."""
    return {
        "code": "HostNotRunning",
        "message": f"{host} is shut down: Setup runs on the server itself. "
        "Start it, then run Setup again.",
    }


def check_database_not_empty(db: str, holders: Sequence[str], shown: int) -> dict[str, str]:
    """A failed prerequisite check: the database still holds mailboxes (`shown` are named)."""
    more = len(holders) - shown
    return {
        "code": "MailboxDatabaseNotEmpty",
        "message": _MAILBOXES_TEXT.format(db=db)
        + f" Mailboxes found ({len(holders)}): {', '.join(holders[:shown])}"
        + (f" and {more} more." if more > 0 else "."),
    }


def prerequisites_failed(failed: list[dict[str, str]]) -> OnpremError:
    return OnpremError(
        409,
        "SetupPrerequisiteCheckFailed",
        "Prerequisite Analysis FAILED. Uninstall can't continue: "
        + " ".join(f["message"] for f in failed),
        failed,
    )


# ------------------------------------------------------------------ DNS
def zone_not_found(name: str) -> OnpremError:
    return OnpremError(404, "ZoneNotFound", f"The zone '{name}' was not found on this server.")


def record_not_found(rtype: str, fqdn: str) -> OnpremError:
    return OnpremError(404, "RecordNotFound", f"There is no {rtype} record set at {fqdn}.")


def record_name(name: str, zone: str) -> OnpremError:
    return _bad_request(f"'{name}' is not a valid record name in zone {zone}.")


def record_body() -> OnpremError:
    return _bad_request('The body must be {"ttl": 3600, "values": ["..."]}.')


def record_ttl() -> OnpremError:
    return _bad_request('"ttl" must be a whole number of seconds (0 to 2147483647).')


def cname_conflict(fqdn: str, types: Iterable[str]) -> OnpremError:
    return OnpremError(
        409, "CnameConflict", f"{fqdn} cannot hold a CNAME and other records ({', '.join(types)})."
    )


def record_values() -> OnpremError:
    return _bad_request('"values" must be a non-empty list of strings.')


def cname_values() -> OnpremError:
    return _bad_request("A CNAME record set holds exactly one value.")


def record_value(rtype: str, raw: str, reason: str) -> OnpremError:
    """`reason`: what the value parser found wrong (zones.py's own words)."""
    return _bad_request(f"Invalid {rtype} value '{raw}': {reason}.")


def record_values_repeated(rtype: str) -> OnpremError:
    return _bad_request(f"The {rtype} record set lists the same value twice.")


def unsupported_record_type(rtype: str, supported: Iterable[str]) -> OnpremError:
    return _bad_request(
        f"Record type '{rtype}' is not supported; use one of {', '.join(supported)}."
    )
