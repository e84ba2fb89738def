"""`exwb preflight`: readiness checks of a tenant before its first writeback cycle.

`snapshot` reads a tenant (folder or running services) and joins it as the engine does;
`rules` are the checks (IdFix's and the writeback's); `run` runs them; `output` writes the
console table, Markdown, JSON and JUnit XML. This layer sits above the reports and below the
scenarios, and never imports a fake: it runs against a real AD and tenant too.
"""
