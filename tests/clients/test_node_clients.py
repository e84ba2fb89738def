"""Node clients as users write them: @azure/identity (msal-node underneath) signs in with a
secret or a certificate, and the Graph JavaScript SDK's PageIterator pages through users
(tests/clients/node/graph_pages.mjs). The CA is trusted through NODE_EXTRA_CA_CERTS only.

The packages come from the npm registry (package-lock.json pins them): `npm ci` runs here when
node_modules is missing. Without node and npm the tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.tenant import TenantSpec, generate
from mockservers.runtime import start_tenant

NODE_DIR = Path(__file__).with_name("node")
TENANT = generate(TenantSpec(mailboxes=45, seed=23))


@pytest.fixture(scope="module")
def node_modules() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are needed in CI (apt: nodejs npm)")
        pytest.skip("node and npm are not installed")
    modules = NODE_DIR / "node_modules"
    if not (modules / "@azure" / "identity").is_dir():
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci failed in {NODE_DIR}: {done.stderr[-2000:]}")
    return modules


@pytest.fixture(scope="module")
def endpoints_file(tmp_path_factory):
    run = start_tenant(TENANT)
    path = tmp_path_factory.mktemp("node") / "endpoints.json"
    run.endpoints.write(path)
    yield run.endpoints, path
    run.stop()


def run_node(path: Path, *args: str, ca_file: str | None) -> tuple[int, dict]:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    if ca_file:
        env["NODE_EXTRA_CA_CERTS"] = ca_file
    done = subprocess.run(
        ["node", str(NODE_DIR / "graph_pages.mjs"), str(path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    return done.returncode, json.loads(lines[-1])


@pytest.mark.parametrize("mode", ["secret", "certificate"])
def test_graph_js_sdk_pages_every_user_after_azure_identity_signs_in(
    node_modules, endpoints_file, mode
):
    ep, path = endpoints_file
    code, out = run_node(path, mode, ca_file=ep.ca_file)
    assert code == 0, out
    assert sorted(out["ids"]) == sorted(m.id for m in TENANT.mailboxes)
    assert len(out["ids"]) == len(set(out["ids"]))  # no page twice: the nextLinks are absolute
    assert out["pages"] > 1


def test_without_the_ca_node_refuses_the_certificate(node_modules, endpoints_file):
    _, path = endpoints_file
    code, out = run_node(path, "secret", ca_file=None)
    assert code == 1 and "error" in out
