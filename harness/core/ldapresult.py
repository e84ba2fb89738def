"""LDAP result codes (RFC 4511) and the one error type that carries one, server and client side.

The fake directory raises `LdapError` with a code and AD's diagnostic text (its catalogue is
`mockservers.directory.errors`); the engine's client (`harness.engine.ldapwire`) raises it with
the code and text the server answered, or with `SERVER_DOWN` when there was no answer.
"""

from __future__ import annotations

from enum import IntEnum


class Result(IntEnum):
    SUCCESS = 0
    OPERATIONS_ERROR = 1
    PROTOCOL_ERROR = 2
    TIME_LIMIT_EXCEEDED = 3
    SIZE_LIMIT_EXCEEDED = 4
    COMPARE_FALSE = 5
    COMPARE_TRUE = 6
    AUTH_METHOD_NOT_SUPPORTED = 7
    ADMIN_LIMIT_EXCEEDED = 11
    UNAVAILABLE_CRITICAL_EXTENSION = 12
    SASL_BIND_IN_PROGRESS = 14
    NO_SUCH_ATTRIBUTE = 16
    UNDEFINED_ATTRIBUTE_TYPE = 17
    INAPPROPRIATE_MATCHING = 18
    CONSTRAINT_VIOLATION = 19
    ATTRIBUTE_OR_VALUE_EXISTS = 20
    INVALID_ATTRIBUTE_SYNTAX = 21
    NO_SUCH_OBJECT = 32
    INVALID_DN_SYNTAX = 34
    INVALID_CREDENTIALS = 49
    INSUFFICIENT_ACCESS_RIGHTS = 50
    BUSY = 51
    UNAVAILABLE = 52
    UNWILLING_TO_PERFORM = 53
    NAMING_VIOLATION = 64
    OBJECT_CLASS_VIOLATION = 65
    NOT_ALLOWED_ON_NON_LEAF = 66
    NOT_ALLOWED_ON_RDN = 67
    ENTRY_ALREADY_EXISTS = 68
    OTHER = 80


# Not a result code a server sends: wldap32's LDAP_SERVER_DOWN, which a client reports when the
# connection failed or was lost, so the operation has no answer at all.
SERVER_DOWN = 81


class LdapError(Exception):
    """An operation failed with `code`; `message` is the diagnosticMessage, `matched_dn` the
    matchedDN (noSuchObject's closest existing ancestor)."""

    def __init__(self, code: int, message: str = "", matched_dn: str = "") -> None:
        super().__init__(f"LDAP {int(code)}: {message.strip()}")
        self.code = int(code)
        self.message = message
        self.matched_dn = matched_dn
