"""A provisioning-log line is exactly `Entry.record`: the writer joins each record's own fields
to the fields its cycle shares, encoded once, and must not drift from the record."""

from __future__ import annotations

import json
import uuid

from harness.engine import log as provlog
from harness.engine.log import Entry, LogContext, ProvisioningLog


def test_a_written_line_is_the_record(tmp_path):
    ctx = LogContext("job-1", "tenant-1", "sp-1", "contoso.com", "application", "app", "on demand")
    log = ProvisioningLog(tmp_path, "cycle-1", context=ctx)
    entries = [Entry("user-1"), Entry("user-2", action="Update", status="Failure")]
    entries[0].step(0, "Success", "read from Exchange Online")
    entries[1].step(3, "Failure", "LDAP 50: no rights")
    entries[1].target_dn, entries[1].error_code, entries[1].reason = "CN=Zoë,DC=x", 50, "denied"
    entries[1].modified = [{"displayName": "mail", "oldValue": [], "newValue": ["a@x"]}]
    for e in entries:
        log.write(e)
    log.close()
    lines = [json.loads(x) for x in log.path.read_text(encoding="utf-8").splitlines()]
    for i, (line, e) in enumerate(zip(lines, entries, strict=True)):
        want = e.record("cycle-1", i, ctx)
        assert line.pop("durationInMilliseconds") >= 0
        want.pop("durationInMilliseconds")
        assert line == want
    assert provlog.status(lines[1]) == "Failure" and provlog.error_code(lines[1]) == 50
    assert lines[0]["id"] == str(uuid.uuid5(provlog._NS, "cycle-1/user-1/0"))
