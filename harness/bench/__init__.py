"""`exwb bench`: time and memory of the harness at several tenant sizes.

measure (timers, child processes' own CPU and peak RSS, the machine), cloud_edits (Set-Mailbox
through the EXO admin API), floor (the ldap3 loop), runner (the phases of one size), report
(bench.json, bench.md, the targets) and chart (bench.svg). The command is harness.commands.bench.
"""
