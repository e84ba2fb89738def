"""Every error the fake AD answers with: its LDAP result code and AD's diagnostic text.

AD puts a Win32 error, a component (NameErr, AtrErr, SecErr, UpdErr, SvcErr, LdapErr), a DSID
and a problem name in diagnosticMessage; clients and admins grep for the hex code and the
problem name, so the shapes follow AD's. DSIDs are fixed per call site, as in AD. This module is
the one place such a text is written: the server, the filter compiler and the store raise these
constructors, never an inline `LdapError(...)` (as fakeredis keeps its messages in one module).
"""

from __future__ import annotations

from harness.core import aderrors
from harness.core.ldapresult import LdapError, Result

# The texts the engine's dry-run preview predicts too live in core (harness/core/aderrors.py).
insufficient_access = aderrors.insufficient_access
constraint = aderrors.constraint
invalid_syntax = aderrors.invalid_syntax
_attr_error = aderrors.attribute_error


def invalid_credentials() -> LdapError:
    # data 52e: "logon failure", the same for an unknown user and a wrong password.
    return LdapError(
        Result.INVALID_CREDENTIALS,
        "80090308: LdapErr: DSID-0C090569, comment: AcceptSecurityContext error, data 52e, v4563",
    )


def bind_required() -> LdapError:
    return LdapError(
        Result.OPERATIONS_ERROR,
        "000004DC: LdapErr: DSID-0C090CF4, comment: In order to perform this operation a "
        "successful bind must be completed on the connection., data 0, v4563",
    )


def no_such_object(matched_dn: str) -> LdapError:
    return LdapError(
        Result.NO_SUCH_OBJECT,
        "0000208D: NameErr: DSID-0310028C, problem 2001 (NO_OBJECT), data 0, best match of:"
        f"\n\t'{matched_dn}'\n",
        matched_dn,
    )


def value_exists(attribute: str) -> LdapError:
    return _attr_error(
        Result.ATTRIBUTE_OR_VALUE_EXISTS, "00002083", "1006 (ATT_OR_VALUE_EXISTS)", attribute
    )


def no_such_attribute(attribute: str) -> LdapError:
    return _attr_error(
        Result.NO_SUCH_ATTRIBUTE, "00002077", "1001 (NO_ATTRIBUTE_OR_VAL)", attribute
    )


def undefined_type(attribute: str) -> LdapError:
    return _attr_error(
        Result.UNDEFINED_ATTRIBUTE_TYPE, "0000207E", "1002 (ATT_NOT_DEF_IN_SCHEMA)", attribute
    )


def unknown_attribute(attribute: str) -> LdapError:
    # An add or modify naming an attribute the schema lacks: AD answers noSuchAttribute with
    # its conversion error (Samba's ldap.py test_invalid_attribute, written to pass on Windows;
    # compare keeps undefinedAttributeType).
    return LdapError(Result.NO_SUCH_ATTRIBUTE, invalid_syntax(attribute).message)


def single_value(attribute: str) -> LdapError:
    # ERROR_DS_SINGLE_VALUE_CONSTRAINT: an add with several values for a single-valued
    # attribute (a modify that would leave two answers attributeOrValueExists).
    return _attr_error(
        Result.CONSTRAINT_VIOLATION, "00002081", "1005 (CONSTRAINT_ATT_TYPE)", attribute
    )


def invalid_dn(dn: str) -> LdapError:
    return LdapError(
        Result.INVALID_DN_SYNTAX,
        f"00002081: NameErr: DSID-03050F42, problem 2003 (BAD_ATT_SYNTAX), data 0 ({dn!r})\n",
    )


def _update_error(code: Result, win32: str, problem: str) -> LdapError:
    return LdapError(code, f"{win32}: UpdErr: DSID-030A0C1D, problem {problem}, data 0\n")


def entry_exists() -> LdapError:
    return _update_error(Result.ENTRY_ALREADY_EXISTS, "00002071", "6005 (ENTRY_EXISTS)")


def non_leaf() -> LdapError:
    return _update_error(Result.NOT_ALLOWED_ON_NON_LEAF, "00002015", "6003 (CANT_ON_NON_LEAF)")


def _class_error(win32: str, detail: str) -> LdapError:
    e = _update_error(Result.OBJECT_CLASS_VIOLATION, win32, "6002 (OBJ_CLASS_VIOLATION)")
    e.message = e.message.rstrip("\n") + f" ({detail})\n"
    return e


def object_class_required() -> LdapError:
    # ERROR_DS_OBJECT_CLASS_REQUIRED: an add without objectClass.
    return _class_error("0000207B", "objectClass is required")


def unknown_class(name: str) -> LdapError:
    # An objectClass value the schema lacks: noSuchAttribute, as Samba's tests (written to pass
    # on Windows) expect; the Win32 code, ERROR_DS_OBJ_CLASS_NOT_DEFINED, is unconfirmed.
    return _attr_error(Result.NO_SUCH_ATTRIBUTE, "000020B3", "1001 (NO_ATTRIBUTE_OR_VAL)", name)


def no_structural_class() -> LdapError:
    # ERROR_DS_CLASS_MUST_BE_CONCRETE (unconfirmed): only abstract or auxiliary classes named.
    return _update_error(Result.UNWILLING_TO_PERFORM, "000020A7", "5003 (WILL_NOT_PERFORM)")


def unrelated_classes(detail: str) -> LdapError:
    # ERROR_DS_OBJ_CLASS_NOT_SUBCLASS: two structural classes, neither a subclass of the other.
    return _class_error("000020B4", detail)


def not_allowed_for_class(attribute: str) -> LdapError:
    # ERROR_DS_ATT_NOT_DEF_FOR_CLASS: none of the object's classes may contain the attribute.
    return _class_error("0000207D", f"{attribute} is not allowed by the classes")


def missing_required(attribute: str) -> LdapError:
    # ERROR_DS_MISSING_REQUIRED_ATT: a mustContain attribute is absent.
    return _class_error("0000207C", f"{attribute} is required")


def structural_class_change() -> LdapError:
    # [MS-ADTS] 3.1.1.5.3.5, at functional level 2008 and up: ERROR_DS_ILLEGAL_MOD_OPERATION.
    return _class_error("00002077", "the structural class cannot change")


def _naming_violation(win32: str, detail: str) -> LdapError:
    return LdapError(
        Result.NAMING_VIOLATION,
        f"{win32}: NameErr: DSID-03050B4E, problem 2005 (NAMING_VIOLATION), data 0 ({detail})\n",
    )


def rdn_not_of_class(attribute: str) -> LdapError:
    # ERROR_DS_RDN_DOESNT_MATCH_SCHEMA: the RDN attribute is not the class's rDNAttID.
    return _naming_violation("00002073", attribute)


def rename_rdn_not_of_class(attribute: str) -> LdapError:
    # A modifyDN to an RDN attribute other than rDNAttID: unwillingToPerform (Samba's
    # test_rdn_name, written to pass on Windows).
    return unwilling(f"{attribute} is not the class's RDN attribute")


def illegal_superior(class_name: str) -> LdapError:
    # ERROR_DS_ILLEGAL_SUPERIOR: the parent is not among the class's possible superiors.
    return _naming_violation("00002099", class_name)


def account_name_exists() -> LdapError:
    # ERROR_USER_EXISTS: another account holds the sAMAccountName.
    return _update_error(Result.ENTRY_ALREADY_EXISTS, "00000524", "6005 (ENTRY_EXISTS)")


def upn_not_unique() -> LdapError:
    # ERROR_DS_UPN_VALUE_NOT_UNIQUE_IN_FOREST ([MS-ADTS] 3.1.1.5.1.3, functional level 2012 R2).
    return _attr_error(
        Result.CONSTRAINT_VIOLATION, "000021C8", "1005 (CONSTRAINT_ATT_TYPE)", "userPrincipalName"
    )


def reference_missing(attribute: str, dn: str) -> LdapError:
    # A DN value naming no object: noSuchObject, as for a group member (Samba's sam.py, written
    # to pass on Windows; the text is a capture from AD). For other DN attributes unconfirmed.
    return LdapError(
        Result.NO_SUCH_OBJECT,
        f"00000525: NameErr: DSID-031A1292, problem 2001 (NO_OBJECT), data 0, best match of:"
        f"\n\t'{dn}' ({attribute})\n",
    )


def not_on_rdn(attribute: str) -> LdapError:
    return _update_error(Result.NOT_ALLOWED_ON_RDN, "000020B1", f"6004 (CANT_MOD_RDN) {attribute}")


def unwilling(detail: str = "") -> LdapError:
    # The filter compiler's refusals carry no detail, as AD's do.
    suffix = f" ({detail})" if detail else ""
    return LdapError(
        Result.UNWILLING_TO_PERFORM,
        f"00000035: SvcErr: DSID-03152C30, problem 5003 (WILL_NOT_PERFORM), data 0{suffix}\n",
    )


def tombstone_modified() -> LdapError:
    # [MS-ADTS] 3.1.1.5.3.2: with the Recycle Bin off, an object with isDeleted = TRUE is
    # modified only by an undelete (3.1.1.5.3.7), which the fake does not implement:
    # SV_PROBLEM_WILL_NOT_PERFORM with ERROR_DS_ILLEGAL_MOD_OPERATION (0x2077).
    return LdapError(
        Result.UNWILLING_TO_PERFORM,
        "00002077: SvcErr: DSID-03152D2B, problem 5003 (WILL_NOT_PERFORM), data 0\n",
    )


def replication_denied() -> LdapError:
    # DirSync without the DS-Replication-Get-Changes control access right on the NC head
    # ([MS-DRSR] 5.115.12 SecurityCheckForChanges): ERROR_DS_DRA_ACCESS_DENIED (0x2105).
    return LdapError(
        Result.INSUFFICIENT_ACCESS_RIGHTS,
        "00002105: SecErr: DSID-03152E29, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0\n",
    )


def dirsync_not_nc_head() -> LdapError:
    # DirSync follows changes of a whole NC replica ([MS-ADTS] 3.1.1.3.4.1.3); with
    # LDAP_DIRSYNC_OBJECT_SECURITY a base below the NC head is refused so (Samba's dirsync.py).
    return unwilling("DirSync needs the head of a naming context as its base")


def back_link_written(attribute: str) -> LdapError:
    # A back link (memberOf, directReports) is the directory's own ([MS-ADTS] 3.1.1.1.6).
    # Windows answers unwillingToPerform with ERROR_DS_CANT_MOD_SYSTEM_ONLY: a Windows Server
    # 2012 R2 capture in cannatag/ldap3 issue 808; Samba's ldap.py test_linked_attributes.
    return LdapError(
        Result.UNWILLING_TO_PERFORM,
        f"0000209A: SvcErr: DSID-031A10E7, problem 5003 (WILL_NOT_PERFORM), data 0 ({attribute})\n",
    )


def token_groups_not_base() -> LdapError:
    # tokenGroups asked for in a one-level or subtree search: ERROR_DS_NON_BASE_SEARCH (8480).
    # Code and text as a Windows DC answered (openldap-technical, December 2012, "Why I can't
    # get back attribute tokenGroups"); the attribute's page: "requiring a BASE scope query".
    return LdapError(
        Result.OPERATIONS_ERROR,
        "00002120: SvcErr: DSID-03140293, problem 5012 (DIR_ERROR), data 0\n",
    )


def range_past_end(attribute: str, low: int, count: int) -> LdapError:
    # [MS-ADTS] 3.1.1.3.4.1.22: a range whose low is at or past a linked attribute's value count
    # is operationsError unless the no-error control is sent. The spec leaves the Win32 error
    # open (<unrestricted>); this one is ERROR_DS_OPERATIONS_ERROR's.
    return LdapError(
        Result.OPERATIONS_ERROR,
        f"00002020: SvcErr: DSID-03152C31, problem 5012 (DIR_ERROR), data 0 "
        f"({attribute} has {count} values; the range starts at {low})\n",
    )


def notify_filter_too_complex() -> LdapError:
    # [MS-ADTS] 3.1.1.3.4.1.9: a notification search's filter must be (objectClass=*), else
    # unwillingToPerform; ERROR_DS_NOTIFY_FILTER_TOO_COMPLEX (0x20B9) is the Win32 error Samba
    # answers with (dsdb_notification.c); Microsoft leaves it open (<unrestricted>).
    return LdapError(
        Result.UNWILLING_TO_PERFORM,
        "000020B9: SvcErr: DSID-03152D2C, problem 5003 (WILL_NOT_PERFORM), data 0\n",
    )


def too_many_notifications() -> LdapError:
    # MaxNotificationPerConn (5, the LDAP policy; "A client can register up to five (5)
    # notification requests"): one more is adminLimitExceeded, ERROR_DS_ADMIN_LIMIT_EXCEEDED,
    # as Samba answers in tests written to pass on Windows (source4/dsdb/tests/python/
    # notification.py, test_max_search).
    return LdapError(
        Result.ADMIN_LIMIT_EXCEEDED,
        "00002024: SvcErr: DSID-03152D2D, problem 5008 (ADMIN_LIMIT_EXCEEDED), data 0 "
        "(MaxNotificationPerConn)\n",
    )


def notification_backlog_full() -> LdapError:
    """The Notice of Disconnection to a client that reads its notifications too slowly: more
    than `Limits.notification_backlog` bytes of them were waiting (the fake's own bound;
    Microsoft documents none, only that a client must "process them quickly")."""
    return LdapError(
        Result.UNAVAILABLE,
        "0000200F: SvcErr: DSID-03152D2E, problem 5002 (UNAVAILABLE), data 0 "
        "(change notifications were not read)\n",
    )


def busy() -> LdapError:
    # ERROR_DS_BUSY (0x200E), service problem 5001: the DC refuses work for now.
    return LdapError(Result.BUSY, "0000200E: SvcErr: DSID-03190E44, problem 5001 (BUSY), data 0\n")


def unavailable() -> LdapError:
    # ERROR_DS_UNAVAILABLE (0x200F), service problem 5002: the DC is shutting down or not ready.
    return LdapError(
        Result.UNAVAILABLE,
        "0000200F: SvcErr: DSID-03190E45, problem 5002 (UNAVAILABLE), data 0\n",
    )


# --- protocol errors: requests AD cannot read or does not implement ----------------------------


def tls_unavailable() -> LdapError:
    # A DC with no certificate answers StartTLS with unavailable and this comment.
    return LdapError(
        Result.UNAVAILABLE,
        "00000000: LdapErr: DSID-0C0911E7, comment: Error initializing SSL/TLS, data 0, v4563",
    )


def tls_already_active() -> LdapError:
    # RFC 4511 4.14.1: StartTLS on a TLS connection, or with other requests outstanding.
    return LdapError(
        Result.OPERATIONS_ERROR,
        "00000000: LdapErr: DSID-0C0911E8, comment: Error initializing SSL/TLS, data 0, v4563",
    )


def disconnect(why: str) -> LdapError:
    """The Notice of Disconnection's result (RFC 4511 4.4.1): the connection ends after it."""
    return LdapError(
        Result.PROTOCOL_ERROR, f"00000057: LdapErr: DSID-0C0C0968, comment: {why}, data 0, v4563"
    )


def not_utf8() -> LdapError:
    # An LDAPString (RFC 4511 4.1.2) that is not UTF-8.
    return LdapError(Result.PROTOCOL_ERROR, "a string in the request is not UTF-8")


def internal_error() -> LdapError:
    # A bug of the fake; the details go to its log, not to the client.
    return LdapError(Result.OTHER, "internal error")


def unsupported_version() -> LdapError:
    return LdapError(Result.PROTOCOL_ERROR, "only LDAPv3 is supported")


def sasl_not_supported() -> LdapError:
    """A SASL mechanism the directory does not offer (not in supportedSASLMechanisms)."""
    # AD's words for any mechanism it does not take (ERROR_DS_INAPPROPRIATE_AUTH, 0x2027); it
    # does not echo the name.
    return LdapError(
        Result.AUTH_METHOD_NOT_SUPPORTED,
        "00002027: LdapErr: DSID-0C0905F0, comment: Invalid Authentication method, data 0, v4563",
    )


def bad_security_token() -> LdapError:
    """An NTLM, SPNEGO or DIGEST-MD5 token the DC's security package cannot read, or one
    out of turn."""
    # AcceptSecurityContext's SEC_E_INVALID_TOKEN (0x80090308), with ERROR_INVALID_PARAMETER
    # (0x57) where a wrong password has ERROR_LOGON_FAILURE (52e): the same result code 49.
    return LdapError(
        Result.INVALID_CREDENTIALS,
        "80090308: LdapErr: DSID-0C0906A1, comment: AcceptSecurityContext error, data 57, v4563",
    )


def unsupported_critical_extension(oid: str) -> LdapError:
    return LdapError(
        Result.UNAVAILABLE_CRITICAL_EXTENSION,
        f"00000057: LdapErr: DSID-0C090A3C, comment: Unsupported critical extension {oid}, "
        "data 0, v4563",
    )


def unknown_extended_operation(oid: str) -> LdapError:
    return LdapError(
        Result.PROTOCOL_ERROR,
        f"0000203D: LdapErr: DSID-0C0C0A6B, comment: Unknown extended request OID {oid}, "
        "data 0, v4563",
    )


def bad_control_value(oid: str, detail: str) -> LdapError:
    return LdapError(Result.PROTOCOL_ERROR, f"bad value of control {oid}: {detail}")


def bad_paged_control(detail: str) -> LdapError:
    return LdapError(Result.PROTOCOL_ERROR, f"bad paged results control: {detail}")


def malformed_modifications() -> LdapError:
    return LdapError(Result.PROTOCOL_ERROR, "malformed modification list")


def unknown_modify_operation(op: int) -> LdapError:
    return LdapError(Result.PROTOCOL_ERROR, f"unknown modify operation {op}")


def add_without_values(attribute: str) -> LdapError:
    # RFC 4511: a modify/add carries at least one value (slapd agrees).
    return LdapError(
        Result.PROTOCOL_ERROR,
        f"00000057: LdapErr: DSID-0C090D8A, comment: modify/add of {attribute} requires values, "
        "data 0, v4563",
    )


def rdn_mismatch() -> LdapError:
    # An add whose attributes do not hold the value its RDN names.
    return LdapError(Result.NAMING_VIOLATION, "00002073: NameErr: RDN mismatch")


# --- search filters ---------------------------------------------------------------------------


class FilterError(LdapError):
    """A filter the directory refuses: `code` is the LDAP result, `message` AD's diagnostic."""


def bad_filter(kind: str) -> FilterError:
    """A filter item of a kind RFC 4511 does not define (`kind`: what the decoder made of it)."""
    return FilterError(
        Result.PROTOCOL_ERROR,
        f"00000057: LdapErr: DSID-0C0C0968, comment: Error in filter, data 0, v4563 ({kind})",
    )


def filter_unwilling() -> FilterError:
    """A filter AD refuses to evaluate (a matching rule over the DN, or of every attribute)."""
    e = unwilling()
    return FilterError(e.code, e.message)


def inappropriate_matching(rule: str | None) -> FilterError:
    return FilterError(
        Result.INAPPROPRIATE_MATCHING,
        "00002024: AtrErr: DSID-03152C31, problem 1004 (INAPPROPRIATE_MATCHING), "
        f"data 0 (matching rule {rule})\n",
    )
