"""The tests' handle on the reference directory, OpenLDAP slapd loaded with a generated tenant.

The launcher itself is product code, in mockservers/reference_slapd.py (`exwb bench` runs the
same cycle against slapd); this module re-exports what the tests and bench scripts use.
"""

from mockservers.reference_slapd import (
    MAX_PAGE_SIZE,
    SERVICE_SAM,
    Entry,
    SlapdError,
    SlapdInfo,
    extra_entries,
    find_slapd,
    running_slapd,
    size_limits,
    slapd_available,
    slapd_conf,
    ssha,
)

__all__ = [
    "MAX_PAGE_SIZE",
    "SERVICE_SAM",
    "Entry",
    "SlapdError",
    "SlapdInfo",
    "extra_entries",
    "find_slapd",
    "running_slapd",
    "size_limits",
    "slapd_available",
    "slapd_conf",
    "ssha",
]
