"""Token issuing and the throttling model, with a controlled clock."""

from __future__ import annotations

import pytest

from mockservers.cloud.auth import Auth
from mockservers.cloud.errors import CloudError, OAuthError
from mockservers.cloud.routes import graph_cost
from mockservers.cloud.throttle import Throttle

TENANT = "9b2b6b1e-2c8f-5d1b-9a55-0c5b8d3f2a11"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def issue(auth: Auth, app_name: str = "exwb-admin", **override):
    app = auth.app(app_name)
    form = {
        "grant_type": "client_credentials",
        "client_id": app.client_id,
        "client_secret": app.secret,
        "scope": "https://outlook.office365.com/.default",
        **override,
    }
    return auth.issue(TENANT, form)["access_token"]


def test_tokens_carry_roles_and_expire():
    clock = Clock()
    auth = Auth.for_tenant(TENANT)
    auth.clock = clock
    auth.lifetime = 60
    rw, ro = issue(auth), issue(auth, "exwb-reader")
    assert auth.check(f"Bearer {rw}").can_write
    assert not auth.check(f"bearer {ro}").can_write
    assert auth.check(f"Bearer {rw}").audience == "https://outlook.office365.com"
    clock.t += 61
    with pytest.raises(CloudError) as err:
        auth.check(f"Bearer {rw}")
    assert err.value.status == 401 and "expired" in err.value.message


def test_verified_tokens_are_kept_while_alive_not_per_client_ever_seen():
    # A scheduled cycle asks for a token of its own every 20 minutes: 2,016 over 28 days.
    clock = Clock()
    auth = Auth.for_tenant(TENANT)
    auth.clock = clock
    auth.lifetime = 10**7  # one verified first that outlives the rest: they go all the same
    auth.check(f"Bearer {issue(auth)}")
    auth.lifetime = 3600
    kept = []
    for _ in range(2016):
        token = issue(auth)
        assert auth.check(f"Bearer {token}").can_write
        kept.append(len(auth._verified))
        clock.t += 20 * 60
    assert max(kept) == 1 + 3  # the long one, and the tokens of the last hour
    clock.t += 3600
    with pytest.raises(CloudError) as err:  # a forgotten token is still refused as expired
        auth.check(f"Bearer {token}")
    assert "expired" in err.value.message


def test_secret_comparison_and_errors():
    auth = Auth.for_tenant(TENANT, {"readwrite": "s3cret"})
    assert auth.app("exwb-admin").secret == "s3cret"
    with pytest.raises(OAuthError) as err:
        issue(auth, client_secret="s3cre")
    assert err.value.status == 401 and err.value.body["error"] == "invalid_client"
    with pytest.raises(OAuthError) as err:
        issue(auth, scope="User.Read.All")
    assert err.value.body["error"] == "invalid_scope"


def test_resource_units_refill_over_the_window():
    clock = Clock()
    t = Throttle.profile("10/1000", TENANT)
    t.clock = clock
    for _ in range(5):
        t.charge("app", 2, False)
    with pytest.raises(CloudError) as err:
        t.charge("app", 2, False)
    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "2"  # 2 RU at 1 RU/s
    t.charge("other-app", 2, False)  # buckets are per app
    clock.t += 2
    t.charge("app", 2, False)


def test_write_quota_is_separate_and_refunds_resource_units():
    clock = Clock()
    t = Throttle.profile("100/2", TENANT)
    t.clock = clock
    t.charge("app", 1, True)
    t.charge("app", 1, True)
    with pytest.raises(CloudError) as err:
        t.charge("app", 1, True)
    assert err.value.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
    assert t.charge("app", 1, False)["x-ms-resource-unit"] == "1"  # reads still pass


def test_limit_percentage_header_near_the_limit():
    t = Throttle.profile("10/10", TENANT)
    t.clock = Clock()
    headers = {}
    for _ in range(9):
        headers = t.charge("app", 1, False)
    assert headers["x-ms-throttle-limit-percentage"] == "0.9"


def test_off_and_documented_profiles_and_bad_input():
    assert not Throttle.profile("off").enabled
    assert Throttle.profile("documented").ru_per_10s == 8000
    for bad in ("fast", "0/1", "-1/5"):
        with pytest.raises(ValueError):
            Throttle.profile(bad)


def test_documented_costs():
    assert graph_cost("/v1.0/users", {}, "GET") == (2, False)
    assert graph_cost("/v1.0/users", {"$select": "id"}, "GET") == (1, False)
    assert graph_cost("/v1.0/users", {"$select": "id", "$top": "5"}, "GET") == (1, False)
    assert graph_cost("/adminapi/beta/x/InvokeCommand", {}, "POST") == (1, True)
