"""The shared HTTP/OAuth client against a scripted keep-alive server: tokens and their renewal,
retries and Retry-After, dropped connections, and the services' error shapes."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.clients import http as client_http
from harness.clients.http import (
    TOKEN_REFUSED,
    TOKEN_RENEWAL_MARGIN,
    UNREACHABLE,
    BasicAuth,
    ClientCredentials,
    HttpClient,
    ServiceError,
    decode_error,
)
from tests.support.engine import simulated_time

CLOSE = "close"  # a scripted answer: drop the connection without a response


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Scripted:
    """A keep-alive HTTP/1.1 server answering from a script, one answer per request; once the
    script is spent, every token request gets a token and anything else 200 {}."""

    def __init__(self) -> None:
        self.script: list[Answer | str] = []
        self.seen: list[Seen] = []
        self.tokens = 0
        self.connections = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # One segment per answer: no Nagle/delayed-ACK stall between headers and body.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                owner.connections += 1

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size)
                owner.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                answer = owner.next(self.path)
                if answer == CLOSE:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                assert isinstance(answer, Answer)
                raw = b"" if answer.body is None else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_DELETE = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self, path: str) -> Answer | str:
        if self.script:
            return self.script.pop(0)
        if path == "/token":
            self.tokens += 1
            return Answer(body={"access_token": f"token-{self.tokens}", "expires_in": 3600})
        return Answer(body={})

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path.split("?")[0] == path]


@pytest.fixture
def server() -> Iterator[Scripted]:
    s = Scripted()
    yield s
    s.server.shutdown()
    s.server.server_close()


def oauth(server: Scripted, **kw: Any) -> tuple[HttpClient, list[float]]:
    slept: list[float] = []
    auth = ClientCredentials(f"{server.url}/token", "app", "secret", "scope/.default")
    return HttpClient(auth, sleep=slept.append, **kw), slept


def test_a_token_is_fetched_once_and_sent_on_a_kept_connection(server: Scripted) -> None:
    client, _ = oauth(server)
    with client:
        assert client.call("GET", f"{server.url}/a") == {}
        assert client.call("GET", f"{server.url}/b") == {}
    (token,) = server.requests_to("/token")
    form = token.body.decode()
    assert "grant_type=client_credentials" in form and "scope=scope%2F.default" in form
    assert [s.headers["Authorization"] for s in server.seen[1:]] == ["Bearer token-1"] * 2
    assert server.connections == 1
    assert client.stats == {"requests": 3, "retries": 0, "waited_seconds": 0.0, "throttled": 0}


def test_the_token_is_renewed_the_margin_before_it_expires(server: Scripted) -> None:
    """On the harness clock, as the token service stamps lifetimes (a simulated one here)."""
    with simulated_time() as sim:
        client, _ = oauth(server)
        client.call("GET", f"{server.url}/a")
        sim.advance(timedelta(seconds=3600 - TOKEN_RENEWAL_MARGIN - 1))  # inside the edge: kept
        client.call("GET", f"{server.url}/a")
        assert server.tokens == 1
        sim.advance(timedelta(seconds=1))
        client.call("GET", f"{server.url}/a")
        assert server.tokens == 2
        assert server.seen[-1].headers["Authorization"] == "Bearer token-2"


def test_a_short_lived_token_is_renewed_at_half_its_life(server: Scripted) -> None:
    with simulated_time() as sim:
        server.script = [Answer(body={"access_token": "short", "expires_in": 60})]
        client, _ = oauth(server)
        client.call("GET", f"{server.url}/a")
        sim.advance(timedelta(seconds=29))
        client.call("GET", f"{server.url}/a")
        assert server.tokens == 0  # the scripted short token is still in use
        sim.advance(timedelta(seconds=1))
        client.call("GET", f"{server.url}/a")
        assert server.tokens == 1


def test_a_401_gets_one_fresh_token_then_is_returned(server: Scripted) -> None:
    refused = Answer(401, {"error": {"code": "InvalidAuthenticationToken", "message": "expired"}})
    server.script = [Answer(body={"access_token": "old", "expires_in": 3600}), refused]
    client, _ = oauth(server)
    assert client.call("GET", f"{server.url}/a") == {}
    assert server.seen[-1].headers["Authorization"] == "Bearer token-1"

    server.script = [refused, Answer(body={"access_token": "x", "expires_in": 3600}), refused]
    with pytest.raises(ServiceError) as e:
        client.call("GET", f"{server.url}/a")
    assert (e.value.status, e.value.code) == (401, "InvalidAuthenticationToken")


def test_basic_auth_sends_its_header_and_a_401_is_final(server: Scripted) -> None:
    server.script = [Answer(401, {"error": {"code": "Unauthorized", "message": "no"}})]
    client = HttpClient(BasicAuth("admin", "pw"))
    with pytest.raises(ServiceError) as e:
        client.call("GET", f"{server.url}/hosts")
    assert e.value.status == 401 and e.value.code == "Unauthorized"
    assert len(server.seen) == 1
    assert server.seen[0].headers["Authorization"] == "Basic YWRtaW46cHc="


def test_throttling_waits_retry_after_and_gives_up_after_max_retries(server: Scripted) -> None:
    busy = {"error": {"code": "TooManyRequests", "message": "slow down"}}
    server.script = [
        Answer(429, busy, {"Retry-After": "2"}),
        Answer(503, busy),  # no Retry-After: the default wait
        Answer(429, busy, {"Retry-After": "100000"}),  # capped
    ]
    client, slept = oauth(server, max_retries=3)
    assert client.call("GET", f"{server.url}/a") == {}
    assert slept == [2.0, client_http.DEFAULT_RETRY_AFTER, client_http.MAX_RETRY_AFTER]
    assert client.stats["throttled"] == 3 and client.stats["retries"] == 3
    assert client.stats["waited_seconds"] == sum(slept)

    server.script = [Answer(429, busy, {"Retry-After": "0"})] * 4
    with pytest.raises(ServiceError, match="HTTP 429 after 4 attempts") as e:
        client.call("GET", f"{server.url}/a?$skiptoken=long")
    assert (e.value.status, e.value.code) == (429, "TooManyRequests")
    assert "skiptoken" not in e.value.message


class Refused(ServiceError):
    """A caller's own error type."""


def test_an_idle_connection_the_server_closed_is_resent_at_once(server: Scripted) -> None:
    client, slept = oauth(server, error=Refused)
    client.call("GET", f"{server.url}/a")
    server.script = [CLOSE]
    assert client.call("POST", f"{server.url}/b", {"x": 1}) == {}
    assert slept == [] and client.stats["retries"] == 1
    assert [json.loads(s.body) for s in server.requests_to("/b")] == [{"x": 1}, {"x": 1}]


def test_network_failures_back_off_then_raise_the_callers_error() -> None:
    slept: list[float] = []
    auth = ClientCredentials("http://127.0.0.1:9/token", "app", "secret", "s")  # discard port
    client = HttpClient(auth, max_retries=3, sleep=slept.append, error=Refused)
    with pytest.raises(Refused, match="after 4 attempts") as e:
        client.call("GET", "http://127.0.0.1:9/a")
    assert (e.value.status, e.value.code) == (0, UNREACHABLE)
    assert slept == [0.5, 1.0, 2.0]


def test_a_refused_token_names_oauths_error(server: Scripted) -> None:
    server.script = [Answer(401, {"error": "invalid_client", "error_description": "bad secret"})]
    client, _ = oauth(server, error=Refused)
    with pytest.raises(Refused) as e:
        client.call("GET", f"{server.url}/a")
    assert (e.value.status, e.value.code) == (401, TOKEN_REFUSED)
    assert "invalid_client: bad secret" in e.value.message


def test_errors_decode_graphs_shape_with_details_and_non_json_bodies(server: Scripted) -> None:
    details = [{"code": "Prereq", "message": "still in use"}]
    server.script = [Answer(409, {"error": {"code": "Busy", "message": "no", "details": details}})]
    client = HttpClient(BasicAuth("a", "b"))
    with pytest.raises(ServiceError) as e:
        client.call("DELETE", f"{server.url}/x")
    assert (e.value.status, e.value.code, e.value.message) == (409, "Busy", "no")
    assert e.value.details == details and str(e.value) == "Busy: no"
    assert decode_error("<html>oops</html>") == ("", "'<html>oops</html>'", [])
    assert decode_error(None) == ("", "None", [])
