"""Microsoft's own Graph SDK for Python (msgraph-sdk) against the fake: paging and delta."""

from __future__ import annotations

import asyncio

from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from tests.cloud.http_client import cmdlet, token


class StaticToken(AccessTokenProvider):
    """A token fetched from the fake's token endpoint (azure-identity insists on https)."""

    def __init__(self, value: str) -> None:
        self.value = value

    async def get_authorization_token(
        self, uri: str, additional_authentication_context=None
    ) -> str:
        return self.value

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator(["127.0.0.1"])


def client_for(ep, tok: str) -> GraphServiceClient:
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(tok)))
    adapter.base_url = f"{ep.graph_url}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


async def list_all(client: GraphServiceClient) -> list:
    params = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        select=["id", "userPrincipalName", "mail", "onPremisesImmutableId"], top=120
    )
    page = await client.users.get(RequestConfiguration(query_parameters=params))
    users = list(page.value)
    while page.odata_next_link:
        page = await client.users.with_url(page.odata_next_link).get()
        users.extend(page.value)
    return users


async def delta_round(client: GraphServiceClient, link: str | None) -> tuple[list, str]:
    if link is None:
        params = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
            select=["id", "displayName", "onPremisesExtensionAttributes"]
        )
        page = await client.users.delta.get(RequestConfiguration(query_parameters=params))
    else:
        page = await client.users.delta.with_url(link).get()
    users = list(page.value)
    while page.odata_next_link:
        page = await client.users.delta.with_url(page.odata_next_link).get()
        users.extend(page.value)
    return users, page.odata_delta_link


def test_sdk_lists_every_user_and_follows_delta(running, cloud_tenant):
    ep = running.endpoints
    tok = token(ep)
    client = client_for(ep, tok)

    async def scenario():
        users = await list_all(client)
        first, link = await delta_round(client, None)
        mbx = next(m for m in cloud_tenant.mailboxes if m.is_exchange_cloud_managed)
        assert (
            cmdlet(ep, tok, "Set-Mailbox", Identity=mbx.id, CustomAttribute3="via EXO").status
            == 200
        )
        second, _ = await delta_round(client, link)
        return users, first, second, mbx

    users, first, second, mbx = asyncio.run(scenario())
    assert sorted(u.id for u in users) == sorted(m.id for m in cloud_tenant.mailboxes)
    by_id = {u.id: u for u in users}
    anchored = next(m for m in cloud_tenant.mailboxes if m.immutable_id)
    assert by_id[anchored.id].on_premises_immutable_id == anchored.immutable_id
    assert by_id[anchored.id].user_principal_name == anchored.user_principal_name
    assert len(first) == len(cloud_tenant.mailboxes)
    assert [u.id for u in second] == [mbx.id]
    assert second[0].on_premises_extension_attributes.extension_attribute3 == "via EXO"
