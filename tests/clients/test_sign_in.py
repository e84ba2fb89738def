"""Entra's sign-in and TLS as the SDKs users run see them: MSAL, azure-identity (sync and async),
msgraph-sdk driven by an azure-identity credential, and PyJWT against the published keys.

Each client is given only the authority (or the HTTPS origin) and the CA: the environment
variable its ecosystem reads, nothing patched. MSAL and azure-identity ask Microsoft's own
instance-discovery endpoint about any authority host they do not know; MSAL is pointed at the
fake's (`instance_discovery=<url>`), azure-identity is told to skip it, as the docs say.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import jwt
import msal
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential, ClientSecretCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from harness.tenant import TenantSpec, generate
from mockservers.runtime import start_tenant

GRAPH = "https://graph.microsoft.com/.default"
EXO = "https://outlook.office365.com/.default"
TENANT = generate(TenantSpec(mailboxes=60, seed=19, cloud_managed_fraction=0.8))


@pytest.fixture(scope="module")
def run():
    running = start_tenant(TENANT)
    yield running
    running.stop()


@pytest.fixture
def ep(run, monkeypatch):
    """The endpoints, with the CA trusted the way each ecosystem reads it."""
    ep = run.endpoints
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ep.ca_file)  # requests: MSAL, azure-identity
    monkeypatch.setenv("SSL_CERT_FILE", ep.ca_file)  # OpenSSL's default: httpx, aiohttp
    return ep


def get(url: str, ca_file: str, token: str | None = None) -> tuple[int, dict]:
    ctx = ssl.create_default_context(cafile=ca_file)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), context=ctx) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def msal_app(ep, credential) -> msal.ConfidentialClientApplication:
    # MSAL looks up authority aliases at login.microsoftonline.com whatever instance_discovery
    # URL it is given (msal 1.39, ClientApplication._get_instance_metadata), so an authority
    # outside Microsoft's clouds needs instance_discovery=False, as MSAL's own error says.
    return msal.ConfidentialClientApplication(
        ep.client_id, client_credential=credential, authority=ep.authority, instance_discovery=False
    )


def certificate_credential(path: str) -> dict[str, str]:
    pem = Path(path).read_text()
    cert = x509.load_pem_x509_certificate(pem.encode())
    return {"private_key": pem, "thumbprint": cert.fingerprint(hashes.SHA1()).hex()}


# ------------------------------------------------------------------ discovery documents
def test_discovery_documents_point_at_the_origin_called(ep):
    status, doc = get(f"{ep.authority}/v2.0/.well-known/openid-configuration", ep.ca_file)
    assert status == 200
    assert doc["token_endpoint"] == ep.https_token_url
    assert doc["issuer"] == f"{ep.authority}/v2.0"
    assert doc["jwks_uri"] == f"{ep.authority}/discovery/v2.0/keys"
    assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]
    # The same document over plain HTTP names the plain origin: links follow the request.
    with urllib.request.urlopen(
        f"{ep.graph_url}/{ep.tenant_id}/v2.0/.well-known/openid-configuration"
    ) as r:
        assert json.loads(r.read())["token_endpoint"] == ep.token_url
    status, doc = get(f"{ep.authority}/.well-known/openid-configuration", ep.ca_file)
    assert status == 200 and doc["token_endpoint"].endswith("/oauth2/token")
    assert doc["issuer"] == f"https://sts.windows.net/{ep.tenant_id}/"


def test_an_authority_may_name_the_tenant_by_a_verified_domain(ep):
    domain = TENANT.spec.onmicrosoft_domain
    status, doc = get(
        f"{ep.https_graph_url}/{domain}/v2.0/.well-known/openid-configuration", ep.ca_file
    )
    assert status == 200 and doc["token_endpoint"] == ep.https_token_url  # the id, as Entra's
    app = msal.ConfidentialClientApplication(
        ep.client_id,
        client_credential=ep.client_secret,
        authority=f"{ep.https_graph_url}/{domain.upper()}",
        instance_discovery=False,
    )
    assert "access_token" in app.acquire_token_for_client(scopes=[GRAPH])
    status, body = get(
        f"{ep.https_graph_url}/fabrikam.onmicrosoft.com/v2.0/.well-known/openid-configuration",
        ep.ca_file,
    )
    assert status == 400 and body["error_codes"] == [90002]


def test_unknown_tenant_and_unknown_instance_get_entras_errors(ep):
    status, body = get(
        f"{ep.https_graph_url}/nosuchtenant/v2.0/.well-known/openid-configuration", ep.ca_file
    )
    assert status == 400 and body["error_codes"] == [90002]
    status, body = get(
        f"{ep.https_graph_url}/common/discovery/instance?api-version=1.1"
        "&authorization_endpoint=https://login.example.org/t/oauth2/v2.0/authorize",
        ep.ca_file,
    )
    assert status == 400 and body["error"] == "invalid_instance"
    for hostile in (
        "https://[oops/t/oauth2/v2.0/authorize",
        "",
        "not a url",
        "https://" + "a" * 5000,
    ):
        status, body = get(
            f"{ep.https_graph_url}/common/discovery/instance?api-version=1.1"
            f"&authorization_endpoint={urllib.parse.quote(hostile)}",
            ep.ca_file,
        )
        assert status == 400 and body["error"] == "invalid_instance", (hostile, body)


# ------------------------------------------------------------------ MSAL
def test_msal_validates_the_authority_with_the_fakes_instance_discovery(ep):
    app = msal.ConfidentialClientApplication(
        ep.client_id,
        client_credential=ep.client_secret,
        authority=ep.authority,
        instance_discovery=f"{ep.https_graph_url}/common/discovery/instance",
    )
    assert app.authority.token_endpoint == ep.https_token_url
    with pytest.raises(ValueError, match="invalid_instance"):
        msal.ConfidentialClientApplication(
            ep.client_id,
            client_credential=ep.client_secret,
            authority="https://login.example.org/contoso",
            instance_discovery=f"{ep.https_graph_url}/common/discovery/instance",
        )


def test_msal_with_a_secret_gets_a_token_graph_accepts(ep):
    result = msal_app(ep, ep.client_secret).acquire_token_for_client(scopes=[GRAPH])
    assert "access_token" in result, result
    status, body = get(
        f"{ep.https_graph_url}/v1.0/users?$top=5", ep.ca_file, result["access_token"]
    )
    assert status == 200 and len(body["value"]) == 5
    assert body["@odata.nextLink"].startswith(f"{ep.https_graph_url}/v1.0/users?")


def test_msal_with_a_certificate_gets_a_token_exchange_accepts(ep):
    app = msal_app(ep, certificate_credential(ep.client_certificate_file))
    result = app.acquire_token_for_client(scopes=[EXO])
    assert "access_token" in result, result
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["appidacr"] == "2" and claims["aud"] == "https://outlook.office365.com"
    req = urllib.request.Request(
        f"{ep.https_exo_url}/InvokeCommand",
        data=json.dumps({"CmdletInput": {"CmdletName": "Get-Mailbox"}}).encode(),
        headers={
            "Authorization": f"Bearer {result['access_token']}",
            "Content-Type": "application/json",
        },
    )
    ctx = ssl.create_default_context(cafile=ep.ca_file)
    with urllib.request.urlopen(req, context=ctx) as r:
        assert r.status == 200 and json.loads(r.read())["value"]


def test_msal_with_the_wrong_secret_or_certificate_gets_entras_error(ep):
    result = msal_app(ep, "not-the-secret").acquire_token_for_client(scopes=[GRAPH])
    assert result["error"] == "invalid_client" and 7000215 in result["error_codes"]
    # The read-only app's certificate is not registered on the read-write app.
    app = msal_app(ep, certificate_credential(ep.readonly_client_certificate_file))
    result = app.acquire_token_for_client(scopes=[GRAPH])
    assert result["error"] == "invalid_client" and 700027 in result["error_codes"]


# ------------------------------------------------------------------ azure-identity
def test_azure_identity_secret_and_certificate_credentials(ep):
    host = ep.https_graph_url.removeprefix("https://")
    for credential in (
        ClientSecretCredential(
            ep.tenant_id,
            ep.readonly_client_id,
            ep.readonly_client_secret,
            authority=host,
            disable_instance_discovery=True,
        ),
        CertificateCredential(
            ep.tenant_id,
            ep.readonly_client_id,
            ep.readonly_client_certificate_file,
            authority=host,
            disable_instance_discovery=True,
        ),
    ):
        token = credential.get_token(GRAPH)
        assert token.expires_on > time.time() + 3000
        status, body = get(f"{ep.https_graph_url}/v1.0/users?$top=1", ep.ca_file, token.token)
        assert status == 200 and len(body["value"]) == 1
        claims = jwt.decode(token.token, options={"verify_signature": False})
        assert claims["appid"] == ep.readonly_client_id
        assert "User.Read.All" in claims["roles"] and "User.ReadWrite.All" not in claims["roles"]
    bad = ClientSecretCredential(
        ep.tenant_id, ep.client_id, "wrong", authority=host, disable_instance_discovery=True
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        bad.get_token(GRAPH)


def test_msgraph_sdk_driven_by_an_async_azure_identity_credential(ep):
    from azure.identity.aio import ClientSecretCredential as AsyncSecretCredential
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient

    async def scenario() -> list[str]:
        credential = AsyncSecretCredential(
            ep.tenant_id,
            ep.client_id,
            ep.client_secret,
            authority=ep.https_graph_url.removeprefix("https://"),
        )
        provider = AzureIdentityAuthenticationProvider(
            credential, scopes=[GRAPH], allowed_hosts=["127.0.0.1"]
        )
        adapter = GraphRequestAdapter(provider)
        adapter.base_url = f"{ep.https_graph_url}/v1.0"
        client = GraphServiceClient(request_adapter=adapter)
        page = await client.users.get()
        ids = [u.id for u in page.value]
        while page.odata_next_link:
            page = await client.users.with_url(page.odata_next_link).get()
            ids.extend(u.id for u in page.value)
        await credential.close()
        return ids

    ids = asyncio.run(scenario())
    assert sorted(ids) == sorted(m.id for m in TENANT.mailboxes)


# ------------------------------------------------------------------ the tokens themselves
def test_tokens_verify_against_the_published_keys_with_entras_claims(ep):
    result = msal_app(ep, ep.client_secret).acquire_token_for_client(scopes=[GRAPH])
    token = result["access_token"]
    status, jwks = get(f"{ep.authority}/discovery/v2.0/keys", ep.ca_file)
    assert status == 200
    header = jwt.get_unverified_header(token)
    (key,) = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    public = jwt.PyJWK(key).key
    claims = jwt.decode(
        token,
        public,
        algorithms=["RS256"],
        audience="https://graph.microsoft.com",
        issuer=f"https://sts.windows.net/{ep.tenant_id}/",
    )
    assert claims["tid"] == ep.tenant_id and claims["appid"] == ep.client_id
    assert claims["ver"] == "1.0" and claims["idtyp"] == "app" and claims["appidacr"] == "1"
    assert claims["nbf"] <= claims["iat"] < claims["exp"]
    assert "User.ReadWrite.All" in claims["roles"]
    # The x5c certificate carries the same key.
    cert = x509.load_der_x509_certificate(base64.b64decode(key["x5c"][0]))
    assert cert.public_key().public_numbers() == public.public_numbers()


def test_graph_and_exchange_each_refuse_the_others_tokens(ep):
    graph = msal_app(ep, ep.client_secret).acquire_token_for_client(scopes=[GRAPH])
    exo = msal_app(ep, ep.client_secret).acquire_token_for_client(scopes=[EXO])
    status, body = get(f"{ep.https_graph_url}/v1.0/users?$top=1", ep.ca_file, exo["access_token"])
    assert status == 401 and body["error"]["message"].endswith("Invalid audience.")
    req = urllib.request.Request(
        f"{ep.exo_url}/InvokeCommand",
        data=b'{"CmdletInput": {"CmdletName": "Get-Mailbox"}}',
        headers={"Authorization": f"Bearer {graph['access_token']}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req)
    assert refused.value.code == 401


def test_a_token_signed_with_another_key_is_refused(ep):
    from cryptography.hazmat.primitives.asymmetric import rsa

    real = msal_app(ep, ep.client_secret).acquire_token_for_client(scopes=[GRAPH])
    claims = jwt.decode(real["access_token"], options={"verify_signature": False})
    header = jwt.get_unverified_header(real["access_token"])
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other, algorithm="RS256", headers={"kid": header["kid"]})
    status, body = get(f"{ep.https_graph_url}/v1.0/users?$top=1", ep.ca_file, forged)
    assert status == 401 and body["error"]["code"] == "InvalidAuthenticationToken"
    # alg=none, and an HMAC signed with the public key (the classic confusions).
    none = jwt.encode(claims, None, algorithm="none", headers={"kid": header["kid"]})
    status, _ = get(f"{ep.https_graph_url}/v1.0/users?$top=1", ep.ca_file, none)
    assert status == 401
    status, jwks = get(f"{ep.authority}/discovery/v2.0/keys", ep.ca_file)
    pem = jwt.PyJWK(jwks["keys"][0]).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hmac = _hs256(claims, header["kid"], pem)
    status, _ = get(f"{ep.https_graph_url}/v1.0/users?$top=1", ep.ca_file, hmac)
    assert status == 401


def _hs256(claims: dict, kid: str, secret: bytes) -> str:
    """An HS256 token keyed with `secret` (PyJWT refuses PEM keys for HMAC, so by hand)."""
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def test_a_client_assertion_for_the_wrong_audience_or_time_is_refused(ep):
    pair = Path(ep.client_certificate_file).read_bytes()
    key = serialization.load_pem_private_key(pair, password=None)
    cert = x509.load_pem_x509_certificate(pair)
    x5t = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).rstrip(b"=").decode()
    now = int(time.time())

    def ask(**claims) -> dict:
        body = {
            "iss": ep.client_id,
            "sub": ep.client_id,
            "aud": ep.https_token_url,
            "jti": str(now),
            "nbf": now,
            "exp": now + 600,
            **claims,
        }
        assertion = jwt.encode(body, key, algorithm="RS256", headers={"x5t": x5t})
        form = {
            "grant_type": "client_credentials",
            "client_id": ep.client_id,
            "scope": GRAPH,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }
        req = urllib.request.Request(ep.https_token_url, data=urllib.parse.urlencode(form).encode())
        ctx = ssl.create_default_context(cafile=ep.ca_file)
        try:
            with urllib.request.urlopen(req, context=ctx) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read())

    assert "access_token" in ask()
    assert ask(aud="https://elsewhere.example/t/oauth2/v2.0/token")["error"] == "invalid_client"
    assert ask(aud="https://[oops/t/oauth2/v2.0/token")["error"] == "invalid_client"
    assert ask(aud=["a", "list"])["error"] == "invalid_client"
    assert 700024 in ask(exp=now - 3600, nbf=now - 7200)["error_codes"]
    assert 700021 in ask(iss="someone-else", sub="someone-else")["error_codes"]


# ------------------------------------------------------------------ LDAPS and the hosts API
def test_ldaps_binds_and_searches_with_ldap3(ep):
    from ldap3 import SUBTREE, Connection, Server, Tls

    tls = Tls(ca_certs_file=ep.ca_file, validate=ssl.CERT_REQUIRED)
    server = Server(ep.ldaps_url, use_ssl=True, tls=tls)
    with Connection(server, ep.reader_dn, ep.reader_password, auto_bind=True) as conn:
        conn.search(ep.base_dn, "(objectClass=user)", SUBTREE, attributes=["mail"], size_limit=3)
        assert conn.entries


def ldapsearch(ep, *options: str, ca_file: str) -> subprocess.CompletedProcess[str]:
    """OpenLDAP's ldapsearch reading the root DSE's namingContexts as the reader, trusting
    `ca_file` through LDAPTLS_CACERT only."""
    if shutil.which("ldapsearch") is None:
        pytest.skip("ldapsearch is not installed (apt: ldap-utils)")
    bind = ["-x", "-D", ep.reader_dn, "-w", ep.reader_password, "-b", "", "-s", "base"]
    return subprocess.run(
        ["ldapsearch", "-LLL", *options, *bind, "namingContexts"],
        env={"LDAPTLS_CACERT": ca_file, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_ldaps_with_openldaps_ldapsearch(ep):
    done = ldapsearch(ep, "-H", ep.ldaps_url, ca_file=ep.ca_file)
    assert done.returncode == 0, done.stderr
    assert ep.base_dn in done.stdout


def test_the_hosts_api_over_https(ep):
    ctx = ssl.create_default_context(cafile=ep.ca_file)
    auth = base64.b64encode(f"{ep.admin_dn}:{ep.admin_password}".encode()).decode()
    req = urllib.request.Request(
        f"{ep.onprem_https_url}/hosts", headers={"Authorization": f"Basic {auth}"}
    )
    try:
        with urllib.request.urlopen(req, context=ctx) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    assert status in (200, 404)  # TLS held; the API answered


def test_starttls_upgrades_the_plain_port_with_ldap3(ep):
    from ldap3 import BASE, Connection, Server, Tls

    tls = Tls(ca_certs_file=ep.ca_file, validate=ssl.CERT_REQUIRED)
    conn = Connection(Server(ep.ldap_url, tls=tls), ep.reader_dn, ep.reader_password)
    conn.open()
    assert conn.start_tls(), conn.result
    assert conn.tls_started
    assert conn.bind(), conn.result
    assert conn.search(ep.base_dn, "(objectClass=*)", BASE, attributes=["distinguishedName"])
    # A second StartTLS on the TLS connection: operationsError, as RFC 4511 4.14.1 has it.
    conn.extended("1.3.6.1.4.1.1466.20037")
    assert conn.result["result"] == 1, conn.result
    conn.unbind()


def test_starttls_on_ldaps_is_an_operations_error(ep):
    from ldap3 import Connection, Server, Tls

    tls = Tls(ca_certs_file=ep.ca_file, validate=ssl.CERT_REQUIRED)
    conn = Connection(Server(ep.ldaps_url, use_ssl=True, tls=tls))
    conn.open()
    conn.extended("1.3.6.1.4.1.1466.20037")
    assert conn.result["result"] == 1 and "Error initializing SSL/TLS" in conn.result["message"]
    conn.unbind()


def test_starttls_with_openldaps_ldapsearch(ep):
    done = ldapsearch(ep, "-ZZ", "-H", ep.ldap_url, ca_file=ep.ca_file)
    assert done.returncode == 0, done.stderr
    assert ep.base_dn in done.stdout
    # Without the CA, -ZZ refuses the server's certificate.
    assert ldapsearch(ep, "-ZZ", "-H", ep.ldap_url, ca_file="/nonexistent").returncode != 0
