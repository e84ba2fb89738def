"""The options of the commands that drive the writeback engine (`exwb cycle`, `verify`,
`status`): where the tenant is, the profile, the engine's state dir; read into the engine's
credential types."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from harness.commands import DEFAULT_STATE, read_endpoints
from harness.core.errors import UsageError

if TYPE_CHECKING:
    from harness.engine.rules import Profile
    from harness.engine.source import CloudCredentials
    from harness.engine.target import LdapCredentials

PASSWORD_ENV = "EXWB_BIND_PASSWORD"
SECRET_ENV = "EXWB_CLIENT_SECRET"


def connection_arguments(p: argparse.ArgumentParser) -> None:
    """--endpoints-file, --profile, --json and the explicit connection settings."""
    p.add_argument(
        "--endpoints-file",
        type=Path,
        metavar="F",
        help="the endpoints JSON written by exwb serve (or give the settings below)",
    )
    p.add_argument(
        "--profile",
        default="ga",
        metavar="P",
        help="ga (default), preview, or a custom profile YAML file",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    g = p.add_argument_group(
        "explicit connection settings",
        "Target any LDAP directory (OpenLDAP slapd, a lab AD) and any Graph endpoint; each "
        "overrides the endpoints file. Secrets come from a file or the environment, never "
        "from the command line (other users can read a process's arguments).",
    )
    g.add_argument("--ldap-url", metavar="URL", help="ldap://host:port or ldaps://host:port")
    g.add_argument("--bind-dn", metavar="DN", help="the writeback service account's DN")
    g.add_argument(
        "--bind-password-file",
        type=Path,
        metavar="FILE",
        help=f"file holding its password (default: ${PASSWORD_ENV})",
    )
    g.add_argument("--base-dn", metavar="DN", help="where users are searched")
    g.add_argument("--graph-url", metavar="URL", help="Graph root, e.g. http://127.0.0.1:8443")
    g.add_argument("--token-url", metavar="URL", help="the OAuth2 token endpoint")
    g.add_argument("--client-id", metavar="ID", help="the app that reads users")
    g.add_argument(
        "--client-secret-file",
        type=Path,
        metavar="FILE",
        help=f"file holding the app's secret (default: ${SECRET_ENV})",
    )


def state_dir_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE,
        metavar="D",
        help=f"watermark, escrow and provisioning logs (default {DEFAULT_STATE})",
    )


def count(text: str) -> int:
    try:
        n = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return n


def _secret(path: Path | None, env: str, what: str, fallback: str) -> str:

    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise UsageError(f"{what} file {path}: {e.strerror}") from None
    return os.environ.get(env) or fallback


def profile_option(name: str) -> Profile:
    from harness.engine.rules import BUILTIN_PROFILES, ProfileError, load_profile

    if name in BUILTIN_PROFILES:
        return BUILTIN_PROFILES[name]
    try:
        return load_profile(Path(name))
    except (ProfileError, OSError) as e:
        raise UsageError(str(e)) from None


def load_settings(args: argparse.Namespace) -> tuple[CloudCredentials, LdapCredentials, Profile]:
    from harness.core.endpoints import Endpoints
    from harness.engine.source import CloudCredentials
    from harness.engine.target import LdapCredentials

    ep: Endpoints | None = None
    if args.endpoints_file is not None:
        ep = read_endpoints(args.endpoints_file)

    def given(flag: str | None, field: str) -> str:
        return flag or (str(getattr(ep, field) or "") if ep is not None else "")

    ldap = LdapCredentials(
        given(args.ldap_url, "ldap_url"),
        given(args.bind_dn, "bind_dn"),
        _secret(
            args.bind_password_file, PASSWORD_ENV, "--bind-password", given(None, "bind_password")
        ),
        given(args.base_dn, "base_dn"),
    )
    cloud = CloudCredentials(
        given(args.graph_url, "graph_url"),
        given(args.token_url, "token_url"),
        given(args.client_id, "readonly_client_id"),
        _secret(
            args.client_secret_file,
            SECRET_ENV,
            "--client-secret",
            given(None, "readonly_client_secret"),
        ),
    )
    missing = [
        flag
        for flag, value in (
            ("--ldap-url", ldap.url),
            ("--bind-dn", ldap.bind_dn),
            (f"--bind-password-file or ${PASSWORD_ENV}", ldap.password),
            ("--base-dn", ldap.base_dn),
            ("--graph-url", cloud.graph_url),
            ("--token-url", cloud.token_url),
            ("--client-id", cloud.client_id),
            (f"--client-secret-file or ${SECRET_ENV}", cloud.client_secret),
        )
        if not value
    ]
    if missing:
        where = f"{args.endpoints_file} has no value for" if args.endpoints_file else "missing"
        raise UsageError(f"{where}: {', '.join(missing)} (give --endpoints-file or the settings)")
    return cloud, ldap, profile_option(args.profile)
