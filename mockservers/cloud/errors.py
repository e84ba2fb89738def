"""Every error the fake cloud answers, by name: one function per error, with Microsoft's code,
status and message text (the text the real services send, or modelled on it where noted).

Graph: ``{"error": {"code", "message", "innerError": {"date", "request-id", ...}}}``.
The EXO admin API answers in the same envelope, with Exchange's cmdlet error text in `message`
and the Exchange exception name in `code`. Entra's token endpoint has its own OAuth2 shape
(`OAuthError`, `oauth_error_body`). Handlers raise these; none spells an error text itself.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from harness.core import clock


class CloudError(Exception):
    """An HTTP error with Graph's body; `headers` are extra response headers (Retry-After...)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class OAuthError(Exception):
    """A token-endpoint failure: HTTP status and Entra's OAuth2 error body."""

    def __init__(self, status: int, error: str, aadsts: str, description: str) -> None:
        super().__init__(f"{error}: {aadsts}")
        self.status = status
        self.body = oauth_error_body(error, aadsts, description)


def now_iso() -> str:
    return clock.now().strftime("%Y-%m-%dT%H:%M:%S")  # the tenant's time (harness clock)


def error_body(code: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    rid = request_id or str(uuid.uuid4())
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": now_iso(), "request-id": rid, "client-request-id": rid},
        }
    }


def oauth_error_body(error: str, aadsts: str, description: str) -> dict[str, Any]:
    """Entra's token-endpoint error: ``{"error", "error_description", "error_codes", ...}``."""
    trace = str(uuid.uuid4())
    return {
        "error": error,
        "error_description": f"{aadsts}: {description} Trace ID: {trace} "
        f"Correlation ID: {uuid.uuid4()} Timestamp: {now_iso()}Z",
        "error_codes": [int(aadsts.removeprefix("AADSTS"))],
        "timestamp": f"{now_iso()}Z",
        "trace_id": trace,
        "correlation_id": str(uuid.uuid4()),
    }


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# ------------------------------------------------------------------ HTTP (every route)
def internal_error() -> CloudError:
    return CloudError(500, "generalException", "An internal server error occurred.")


def request_too_large() -> CloudError:
    return CloudError(413, "RequestEntityTooLarge", "The request body is too large.")


def method_not_allowed(allowed: Iterable[str]) -> CloudError:
    return CloudError(
        405,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
        {"Allow": ", ".join(allowed)},  # RFC 9110 15.5.6: a 405 names the allowed methods
    )


def segment_not_found(segment: str) -> CloudError:
    return CloudError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


def tenant_not_found(tenant: str) -> CloudError:
    return CloudError(404, "NotFound", f"Tenant '{tenant}' was not found.")


def insufficient_privileges() -> CloudError:
    return CloudError(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


def invalid_json() -> CloudError:
    return CloudError(
        400,
        "BadRequest",
        "Unable to read JSON request payload. Please ensure "
        "Content-Type header is set and payload is of valid JSON format.",
    )


def not_an_object() -> CloudError:
    return CloudError(400, "BadRequest", "The request body must be a JSON object.")


def too_many_requests(headers: dict[str, str]) -> CloudError:
    """429 with Retry-After and the x-ms-throttle-* `headers` (throttle.py, faults)."""
    return CloudError(429, "TooManyRequests", "Too many requests.", headers)


def service_unavailable(retry_after: int) -> CloudError:
    return CloudError(
        503,
        "serviceNotAvailable",
        "The service is temporarily unavailable. Please retry after the time given.",
        {"Retry-After": str(retry_after)},
    )


# ------------------------------------------------------------------ Entra: tokens
def unknown_tenant(tenant: str) -> OAuthError:
    return OAuthError(400, "invalid_request", "AADSTS90002", f"Tenant '{tenant}' not found.")


def unsupported_grant() -> OAuthError:
    return OAuthError(
        400, "unsupported_grant_type", "AADSTS70003", "The app requested an unsupported grant type."
    )


def missing_scope() -> OAuthError:
    return OAuthError(
        400,
        "invalid_request",
        "AADSTS900144",
        "The request body must contain the following parameter: 'scope'.",
    )


def invalid_scope(scope: str) -> OAuthError:
    return OAuthError(
        400,
        "invalid_scope",
        "AADSTS1002012",
        f"The provided value for scope {scope} is not valid. Client credential "
        "flows must have a scope value with /.default suffixed to the resource "
        "identifier (application ID URI).",
    )


def unknown_client(client_id: str, tenant_id: str) -> OAuthError:
    return OAuthError(
        400,
        "unauthorized_client",
        "AADSTS700016",
        f"Application with identifier '{client_id}' was not found in the directory '{tenant_id}'.",
    )


def invalid_secret(client_id: str) -> OAuthError:
    return OAuthError(
        401,
        "invalid_client",
        "AADSTS7000215",
        "Invalid client secret provided. Ensure the secret being sent in the "
        "request is the client secret value, not the client secret ID, for a "
        f"secret added to app '{client_id}'.",
    )


def invalid_instance() -> OAuthError:
    return OAuthError(400, "invalid_instance", "AADSTS50049", "Unknown or invalid instance.")


def assertion_malformed() -> OAuthError:
    return OAuthError(400, "invalid_request", "AADSTS50027", "JWT token is invalid or malformed.")


def assertion_wrong_client(client_id: str) -> OAuthError:
    return OAuthError(
        400,
        "invalid_request",
        "AADSTS700021",
        f"Client assertion application identifier doesn't match 'client_id' parameter "
        f"'{client_id}'.",
    )


def assertion_unknown_key(thumbprint: str, client_id: str) -> OAuthError:
    return OAuthError(
        401,
        "invalid_client",
        "AADSTS700027",
        "The certificate with identifier used to sign the client assertion is not registered "
        f"on application. [Reason - The key was not found., Thumbprint of key used by client: "
        f"'{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph "
        f"to see configured keys for app Id '{client_id}'.]",
    )


def assertion_bad_signature() -> OAuthError:
    return OAuthError(
        401, "invalid_client", "AADSTS700027", "Client assertion failed signature validation."
    )


def assertion_expired() -> OAuthError:
    return OAuthError(
        401,
        "invalid_client",
        "AADSTS700024",
        "Client assertion is not within its valid time range.",
    )


def assertion_bad_audience(aud: str) -> OAuthError:
    # The code Entra uses for a wrong `aud` is not in its public error list (unconfirmed);
    # AADSTS50027 is its generic "invalid JWT" code.
    return OAuthError(
        401,
        "invalid_client",
        "AADSTS50027",
        f"JWT token is invalid or malformed. The audience '{aud[:200]}' is not this tenant's "
        "token endpoint.",
    )


def missing_credential() -> OAuthError:
    return OAuthError(
        401,
        "invalid_client",
        "AADSTS7000218",
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'.",
    )


def unsupported_assertion_type() -> OAuthError:
    return OAuthError(
        400,
        "invalid_request",
        "AADSTS50027",
        "JWT token is invalid or malformed. client_assertion_type must be "
        "'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
    )


def _invalid_token(message: str) -> CloudError:
    return CloudError(
        401,
        "InvalidAuthenticationToken",
        message,
        {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
    )


def token_empty() -> CloudError:
    return _invalid_token("Access token is empty.")


def token_not_bearer() -> CloudError:
    # Graph answers a scheme other than Bearer as it answers a token for another resource.
    return token_wrong_audience()


def token_unknown() -> CloudError:
    return _invalid_token("IDX14100: JWT is not well formed, there are no dots (.).")


def token_malformed() -> CloudError:
    return _invalid_token("CompactToken parsing failed with error code: 80049217")


def token_invalid() -> CloudError:
    return _invalid_token("Access token validation failure.")


def token_wrong_audience() -> CloudError:
    return _invalid_token("Access token validation failure. Invalid audience.")


def token_expired() -> CloudError:
    return _invalid_token("Lifetime validation failed, the token is expired.")


# ------------------------------------------------------------------ Graph: query options
def invalid_page_size(raw: str) -> CloudError:
    return CloudError(
        400,
        "Request_BadRequest",
        f"Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive.",
    )


def invalid_top(raw: str, maximum: int) -> CloudError:
    """$top outside 1..maximum on a list whose page size is not users' 999 (audit logs)."""
    return CloudError(
        400,
        "Request_BadRequest",
        f"Invalid page size specified: '{raw}'. Must be between 1 and {maximum} inclusive.",
    )


def invalid_count(raw: str) -> CloudError:
    return CloudError(400, "Request_BadRequest", f"Invalid value '{raw}' for $count.")


def count_needs_eventual() -> CloudError:
    # Graph answers this when ConsistencyLevel: eventual is missing.
    return CloudError(400, "Request_BadRequest", "$count is not currently supported.")


def option_not_supported(option: str, where: str) -> CloudError:
    return CloudError(
        400, "Request_BadRequest", f"The query parameter '${option}' is not supported by {where}."
    )


def unknown_property(name: str, type_name: str = "microsoft.graph.user") -> CloudError:
    return CloudError(
        400,
        "Request_BadRequest",
        f"Could not find a property named '{name}' on type '{type_name}'.",
    )


def unsupported_query() -> CloudError:
    return CloudError(400, "Request_UnsupportedQuery", "Unsupported Query.")


def unsupported_filter(prop: str, resource: str = "User") -> CloudError:
    return CloudError(
        400,
        "Request_UnsupportedQuery",
        f"Unsupported or invalid query filter clause specified for property '{prop}' "
        f"of resource '{resource}'.",
    )


def invalid_filter() -> CloudError:
    return CloudError(400, "BadRequest", "Invalid filter clause")


def advanced_query_required(operator: str) -> CloudError:
    """An advanced-query operator (ne, not, endsWith) without ConsistencyLevel: eventual and
    $count=true; the text Microsoft Learn shows ("Advanced query capabilities...")."""
    return CloudError(
        400,
        "Request_UnsupportedQuery",
        f"Operator '{operator}' is not supported because the required parameters might be "
        "missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. "
        "Refer to https://aka.ms/graph-docs/advanced-queries for more information",
    )


def search_needs_eventual() -> CloudError:
    return CloudError(
        400,
        "Request_UnsupportedQuery",
        "Request with $search query parameter only works through MSGraph with a special "
        "request header: 'ConsistencyLevel: eventual'",
    )


def sorting_not_supported() -> CloudError:
    """$orderby with $filter outside an advanced query, or on a property Graph cannot sort."""
    return CloudError(400, "Request_UnsupportedQuery", "Sorting not supported for current query.")


def incompatible_types(left: str, right: str, kind: str) -> CloudError:
    """OData's text for a literal of the wrong type (`mail eq true`)."""
    return CloudError(
        400,
        "BadRequest",
        "A binary operator with incompatible types was detected. Found operand types "
        f"'{left}' and '{right}' for operator kind '{kind}'.",
    )


def odata_syntax(position: int, text: str) -> CloudError:
    """OData's parser error, e.g. for `$orderby=displayName sideways`."""
    return CloudError(400, "BadRequest", f"Syntax error at position {position} in '{text}'.")


def filter_too_complex(terms: int, length: int, depth: int) -> CloudError:
    """Modelled, not captured: this fake's bounds on one $filter or $search."""
    return CloudError(
        400,
        "Request_UnsupportedQuery",
        f"The query is too complex: at most {terms} comparisons, {length} characters and "
        f"{depth} levels of nesting.",
    )


def invalid_search(text: str) -> CloudError:
    """Modelled, not captured: a $search that is not "property:text" clauses joined with AND
    and OR."""
    return CloudError(
        400,
        "Request_UnsupportedQuery",
        f"Invalid $search '{text}': use \"property:text\" clauses in double quotes, joined "
        "with AND or OR.",
    )


def invalid_page_token() -> CloudError:
    return CloudError(
        400,
        "Request_BadRequest",
        "The specified page token value is not valid for this query. "
        "Follow @odata.nextLink as returned, without changing the query.",
    )


def resource_not_found(key: str) -> CloudError:
    return CloudError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are "
        "not present.",
    )


# ------------------------------------------------------------------ Graph: JSON batching
def json_batch_invalid(detail: str) -> CloudError:
    """Modelled, not captured: a $batch body Graph could not read (`detail` says why)."""
    return CloudError(400, "BadRequest", f"Invalid batch payload format: {detail}")


def json_batch_too_many() -> CloudError:
    """More than 20 requests in one $batch (Graph's text, as users report it)."""
    return CloudError(400, "BadRequest", "Number of requests inside batch exceeds the limit.")


def json_batch_duplicate_id(id_: str) -> CloudError:
    """Modelled: Learn says ids must be unique (case-insensitively) or the batch fails with 400."""
    return CloudError(400, "BadRequest", f"Batch request contains duplicate request id '{id_}'.")


def json_batch_bad_dependency(id_: str, dependency: str) -> CloudError:
    """Modelled: dependsOn naming a request that is not in the batch (or itself, or a cycle)."""
    return CloudError(
        400,
        "BadRequest",
        f"Request '{id_}' has an invalid dependsOn '{dependency}': not another request of "
        "this batch, or a dependency cycle.",
    )


def failed_dependency(dependency: str) -> CloudError:
    """424 for a request whose dependsOn failed (Learn: "fails with status code 424")."""
    return CloudError(
        424, "FailedDependency", f"The request depends on request '{dependency}', which failed."
    )


# ------------------------------------------------------------------ Graph: delta
def sync_state_not_found() -> CloudError:
    return CloudError(
        400,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data "
        "must be synchronized again.",
    )


def resync_required(location: str) -> CloudError:
    return CloudError(
        410,
        "resyncRequired",
        "The delta token is no longer valid, and the app must reset the sync state.",
        {"Location": location},
    )


def delta_filter_unsupported() -> CloudError:
    return CloudError(
        400,
        "Request_UnsupportedQuery",
        "Unsupported query. Delta on users supports only $filter=id eq '{id}', "
        "optionally joined with 'or'.",
    )


def delta_filter_too_many(maximum: int) -> CloudError:
    return CloudError(
        400,
        "Request_UnsupportedQuery",
        f"Too many ids in $filter: delta tracks at most {maximum} objects.",
    )


# ------------------------------------------------------------------ Graph: writes
def undeclared_property(name: str) -> CloudError:
    return CloudError(
        400,
        "Request_BadRequest",
        f"Property '{name}' does not exist as a declared property or extension property.",
    )


def invalid_property_value(name: str, resource: str) -> CloudError:
    return CloudError(
        400,
        "Request_BadRequest",
        f"Invalid value specified for property '{name}' of resource '{resource}'.",
    )


def read_only_property(name: str) -> CloudError:
    return CloudError(
        400, "Request_BadRequest", f"Property '{name}' is read-only and cannot be set."
    )


def not_settable_here(name: str) -> CloudError:
    """Modelled, not captured: what this fake's /servicePrincipals refuses to change."""
    return CloudError(
        400,
        "Request_BadRequest",
        f"Updating '{name}' is not supported by this simulated /servicePrincipals endpoint; "
        "only keyCredentials can be changed.",
    )


def not_a_boolean(value: Any) -> CloudError:
    return CloudError(
        400,
        "BadRequest",
        f"Cannot convert the literal '{value}' to the expected type 'Edm.Boolean'.",
    )


# ------------------------------------------------------------------ EXO admin API (the request)
def invalid_skiptoken() -> CloudError:
    return CloudError(400, "BadRequest", "The $skiptoken is invalid or has expired.")


def not_a_cmdlet_input() -> CloudError:
    return CloudError(
        400,
        "BadRequest",
        'The request body must be {"CmdletInput": {"CmdletName": ..., "Parameters": {...}}}.',
    )


def parameters_not_an_object() -> CloudError:
    return CloudError(400, "BadRequest", "CmdletInput.Parameters must be an object.")


# ------------------------------------------------------------------ EXO: cmdlets
def cmdlet_not_found(cmdlet: str) -> CloudError:
    return CloudError(
        400,
        "CommandNotFoundException",
        f"The term '{cmdlet}' is not recognized as the name of a cmdlet, function, script "
        "file, or operable program. Check the spelling of the name, or if a path was "
        "included, verify that the path is correct and try again.",
    )


def cmdlet_read_only(cmdlet: str) -> CloudError:
    return CloudError(
        403,
        "AccessDenied",
        f"Access denied: the caller's token grants read access only and can't run '{cmdlet}'.",
    )


def object_not_found(identity: str, server: str) -> CloudError:
    return CloudError(
        400,
        "ManagementObjectNotFoundException",
        f"The operation couldn't be performed because object '{identity}' couldn't be found "
        f"on '{server}'.",
    )


def parameter_binding(message: str) -> CloudError:
    """PowerShell's ParameterBindingException with `message` (the OPATH parser's, for -Filter)."""
    return CloudError(400, "ParameterBindingException", message)


def parameters_not_a_hashtable() -> CloudError:
    return parameter_binding("The cmdlet parameters must be a JSON object of name/value pairs.")


def unknown_parameter(key: str) -> CloudError:
    return parameter_binding(f"A parameter cannot be found that matches parameter name '{key}'.")


def parameter_repeated(name: str) -> CloudError:
    return parameter_binding(
        f"Cannot bind parameter because parameter '{name}' is specified more than once."
    )


def missing_mandatory(name: str) -> CloudError:
    return parameter_binding(
        f"Cannot process command because of one or more missing mandatory parameters: {name}."
    )


def cannot_convert(name: str, type_name: str, target: str, detail: str) -> CloudError:
    """`type_name`: the value as PowerShell names it (System.Collections.Hashtable...)."""
    return parameter_binding(
        f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
        f'"{type_name}" to type "{target}". {detail}'
    )


def not_an_enumerator(name: str, value: Any, type_: str, names: Iterable[str]) -> CloudError:
    return parameter_binding(
        f'Cannot bind parameter \'{name}\'. Cannot convert value "{value}" to type "{type_}". '
        f'Error: "Unable to match the identifier name {value} to a valid enumerator name. '
        f'Specify one of the following enumerator names and try again: {", ".join(names)}"'
    )


def not_in_validate_set(name: str, value: str, allowed: Iterable[str]) -> CloudError:
    return parameter_binding(
        f"Cannot validate argument on parameter '{name}'. The argument "
        f'"{value}" does not belong to the set "{",".join(allowed)}" specified by '
        "the ValidateSet attribute. Supply an argument that is in the set and then try "
        "the command again."
    )


def out_of_write_scope(alias: str, blocked: Iterable[str]) -> CloudError:
    return CloudError(
        400,
        "TaskInvalidOperationException",
        f"The operation on mailbox \"{alias}\" failed because it's out of the current user's "
        f"write scope. The action 'Set-Mailbox', '{', '.join(blocked)}', can't be performed on "
        f"the object '{alias}' because the object is being synchronized from your on-premises "
        "organization. This action should be performed on the object in your on-premises "
        "organization.",
    )


def _property_validation(message: str, code: str = "PropertyValidationException") -> CloudError:
    return CloudError(400, code, message)


def value_too_long(value: str, maximum: int) -> CloudError:
    return _property_validation(
        f"The length of the property is too long. The maximum length is {maximum} and the "
        f"length of the value provided is {len(value)}."
    )


def value_too_short() -> CloudError:
    return _property_validation(
        "The length of the property is too short. The minimum length is 1 and the "
        "length of the value provided is 0."
    )


def multiple_primaries() -> CloudError:
    return _property_validation(
        "There are multiple primary SMTP addresses. Please ensure there is only one primary "
        "address for each address type.",
        "DataValidationException",
    )


def no_primary() -> CloudError:
    return _property_validation(
        'The mailbox must have a primary SMTP address (an address with the prefix "SMTP:").',
        "DataValidationException",
    )


def value_repeated(value: str) -> CloudError:
    return _property_validation(
        f'The value "{value}" is already present in the collection.', "DataValidationException"
    )


def unsupported_prefix(value: str, prefix: str) -> CloudError:
    return _property_validation(
        f'The address "{value}" has an unsupported prefix "{prefix}". Supported address '
        "types are SMTP, X500, X400, SIP and EUM."
    )


def invalid_address(kind: str, value: str) -> CloudError:
    return _property_validation(f'The {kind} address "{value}" isn\'t valid.')


def invalid_smtp(address: str) -> CloudError:
    return _property_validation(
        f'The email address "{address}" isn\'t correct. Please use this format: user name, the @ '
        "sign, followed by the domain name. For example, tonysmith@contoso.com or "
        "tony.smith@contoso.com."
    )


def proxy_address_taken(address: str, owner_alias: str) -> CloudError:
    return CloudError(
        400,
        "ProxyAddressExistsException",
        f'The proxy address "{address}" is already being used by the proxy addresses or '
        f'LegacyExchangeDN of "{owner_alias}". Please choose another proxy address.',
    )


def connector_in_use(name: str, rules: Iterable[str]) -> CloudError:
    """Modelled on Exchange's "in use" errors, not copied from a captured one."""
    listed = ", ".join(f"'{r}'" for r in rules)
    return CloudError(
        400,
        "InvalidOperationException",
        f"Outbound connector '{name}' can't be removed because it's in use by the following "
        f"transport rule(s): {listed}. Remove the connector from these rules or remove the "
        "rules, and then try again.",
    )


# ------------------------------------------------------------------ Entra Connect export
# The sync service is private; its errors are modelled on Graph's, not captured.
def export_invalid(prop: str, message: str) -> CloudError:
    return CloudError(400, "InvalidValue", f"Invalid value for property '{prop}': {message}")


def export_not_unique(prop: str) -> CloudError:
    return CloudError(
        409,
        "AttributeValueMustBeUnique",
        f"Another object with the same value for property {prop} already exists.",
    )


def export_not_a_string(prop: str) -> CloudError:
    return export_invalid(prop, "expected a string or null.")


def export_not_a_list(prop: str) -> CloudError:
    return export_invalid(prop, "expected a list of strings or null.")


def export_value_twice(prop: str, value: str) -> CloudError:
    return export_invalid(prop, f"the value '{value}' appears twice.")


def export_too_long(prop: str, maximum: int) -> CloudError:
    return export_invalid(prop, f"longer than {maximum} characters.")


def export_value_lengths(prop: str, maximum: int) -> CloudError:
    return export_invalid(prop, f"each value must be 1 to {maximum} characters.")


def export_display_name(prop: str, maximum: int) -> CloudError:
    return export_invalid(prop, f"a display name is 1 to {maximum} characters.")


def export_not_a_upn(prop: str) -> CloudError:
    return export_invalid(prop, "expected user@domain.")


def export_no_prefix(prop: str, address: str) -> CloudError:
    return export_invalid(prop, f"'{address}' has no address type prefix.")


def export_one_primary(prop: str) -> CloudError:
    return export_invalid(prop, 'exactly one primary address (prefix "SMTP:") is required.')


def export_unknown_type(prop: str, raw: Any, known: Iterable[int]) -> CloudError:
    listed = ", ".join(str(k) for k in known)
    return export_invalid(prop, f"{raw!r} is not a recipient type this tenant models ({listed}).")


def export_not_a_flag(prop: str) -> CloudError:
    return export_invalid(prop, "expected TRUE, FALSE or null.")


def _bad_batch(message: str) -> CloudError:
    return CloudError(400, "BadRequest", message)


def batch_not_an_object() -> CloudError:
    return _bad_batch('The request body must be {"objects": [...]}.')


def batch_size(size: int, maximum: int) -> CloudError:
    return _bad_batch(f"A batch holds 1 to {maximum} objects, not {size}.")


def batch_entry_shape(i: int) -> CloudError:
    return _bad_batch(f'objects[{i}] must be {{"sourceAnchor", "properties"}}.')


def batch_anchor_empty(i: int) -> CloudError:
    return _bad_batch(f"objects[{i}].sourceAnchor must be a non-empty string.")


def batch_properties(i: int) -> CloudError:
    return _bad_batch(f"objects[{i}].properties must be an object.")


def batch_anchor_twice(i: int, anchor: str) -> CloudError:
    return _bad_batch(f"objects[{i}]: sourceAnchor {anchor} appears twice in the batch.")


def export_no_anchor(anchor: str) -> CloudError:
    return CloudError(
        404, "Request_ResourceNotFound", f"No synchronized object has the source anchor '{anchor}'."
    )


def export_not_in_schema(prop: str) -> CloudError:
    return CloudError(
        400,
        "Request_BadRequest",
        f"Property '{prop}' is not in the directory synchronization schema.",
    )


# ------------------------------------------------------------------ the harness clock (extension)
def clock_bad_advance(message: str) -> CloudError:
    """POST /exwb/clock/advance with a body that names no forward move of the clock."""
    return CloudError(400, "BadRequest", message)


def clock_conflict(message: str) -> CloudError:
    """The clock cannot move: it is the wall clock, or an advance is under way."""
    return CloudError(409, "Conflict", message)


# ------------------------------------------------------------------ Graph: synchronization jobs
def template_not_found(template_id: str) -> CloudError:
    """instantiate on an application template this tenant does not offer."""
    return CloudError(
        404, "Request_ResourceNotFound", f"Application template '{template_id}' does not exist."
    )


def job_not_found(job_id: str) -> CloudError:
    return CloudError(404, "NotFound", f"The synchronization job '{job_id}' was not found.")


def job_template_invalid(template_id: Any, known: str) -> CloudError:
    return CloudError(
        400,
        "BadRequest",
        f"templateId {template_id!r} is not a synchronization template of this application: "
        f"use '{known}'.",
    )


def job_exists(job_id: str) -> CloudError:
    return CloudError(
        409,
        "Conflict",
        f"The service principal already has the synchronization job '{job_id}'; delete it first.",
    )


def sync_unavailable() -> CloudError:
    """A tenant served without the writeback engine has no job to create."""
    return CloudError(
        501,
        "NotImplemented",
        "This simulated tenant runs no writeback engine: serve it with `exwb serve` to use "
        "synchronization jobs.",
    )


def sync_bad_request(message: str) -> CloudError:
    """A synchronization request whose body or criteria are not usable; names the value."""
    return CloudError(400, "BadRequest", message)


def on_demand_throttled(retry_after: int) -> CloudError:
    """provisionOnDemand past its documented 5 requests per 10 seconds."""
    return CloudError(
        429,
        "TooManyRequests",
        "provisionOnDemand is limited to 5 requests per 10 seconds; retry after the time given.",
        {"Retry-After": str(retry_after)},
    )
