"""`exwb clock`: read or advance a served tenant's simulated clock.

A client of the fake cloud's admin routes (`GET /exwb/clock`, `POST /exwb/clock/advance`, a
harness extension): it signs in as the tenant's read-write app (the only one holding
`Exwb.Clock.ReadWrite`) with the endpoints file's secret, so a shell script or CI job can move
the tenant through days without writing an OAuth client. The cycles and retries that fall due
run before the answer; `ran` counts them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError


def add_parser(sub: Any) -> None:
    from harness.commands.served_job import interval

    p = sub.add_parser(
        "clock",
        help="read or advance a served tenant's simulated clock",
        description="Print the served tenant's clock (wall or simulated, and its time); with "
        "--advance or --to, move a simulated clock forward first: the served job's cycles and "
        "escrow retries that fall due run, in order, before the answer. Exit 0, 1 when the "
        "server refused (a wall clock cannot be advanced), 2 on bad input.",
    )
    p.add_argument(
        "--endpoints-file",
        type=Path,
        required=True,
        metavar="F",
        help="the endpoints file `exwb serve --endpoints-file` wrote",
    )
    move = p.add_mutually_exclusive_group()
    move.add_argument(
        "--advance",
        type=interval,
        metavar="DURATION",
        help="advance by an ISO 8601 duration (PT20M, PT6H, P7D)",
    )
    move.add_argument("--to", metavar="TIME", help="advance to an ISO 8601 UTC time")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness.clients.http import GRAPH_SCOPE, ClientCredentials, HttpClient, ServiceError
    from harness.commands import read_endpoints

    ep = read_endpoints(args.endpoints_file)
    if not (ep.graph_url and ep.token_url and ep.client_id and ep.client_secret):
        raise UsageError(f"{args.endpoints_file} names no Graph URL and read-write app")
    base = ep.graph_url.rstrip("/")
    auth = ClientCredentials(ep.token_url, ep.client_id, ep.client_secret, GRAPH_SCOPE)
    body: dict[str, Any] | None = None
    if args.advance is not None:
        body = {"minutes": args.advance.total_seconds() / 60}
    elif args.to is not None:
        body = {"to": args.to}
    try:
        with HttpClient(auth, max_retries=0) as http:
            if body is None:
                answer = http.call("GET", f"{base}/exwb/clock")
            else:
                answer = http.call("POST", f"{base}/exwb/clock/advance", body)
    except ServiceError as e:
        print(f"exwb clock: {e}")
        return 1
    except OSError as e:
        raise UsageError(f"cannot reach {base}: {e}") from None
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        ran = f"; ran {answer['ran']} scheduled item(s)" if "ran" in answer else ""
        print(f"{answer['kind']} clock: {answer['now']}{ran}")
    return 0
