// A Node app as users write one: @azure/identity signs in (msal-node underneath), the Graph
// JavaScript SDK lists users and its PageIterator follows @odata.nextLink. It reads the
// endpoints file named on the command line and trusts the fake's CA through
// NODE_EXTRA_CA_CERTS, which the caller sets. Prints {"ids": [...], "pages": N} as JSON.
import { readFileSync } from "node:fs";
import { ClientCertificateCredential, ClientSecretCredential } from "@azure/identity";
import { Client, PageIterator } from "@microsoft/microsoft-graph-client";
import { TokenCredentialAuthenticationProvider } from "@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials/index.js";

const ep = JSON.parse(readFileSync(process.argv[2], "utf8"));
const mode = process.argv[3] ?? "secret";
const options = { authorityHost: ep.https_graph_url, disableInstanceDiscovery: true };
const credential =
  mode === "certificate"
    ? new ClientCertificateCredential(ep.tenant_id, ep.client_id, { certificatePath: ep.client_certificate_file }, options)
    : new ClientSecretCredential(ep.tenant_id, ep.client_id, ep.client_secret, options);
const authProvider = new TokenCredentialAuthenticationProvider(credential, {
  scopes: ["https://graph.microsoft.com/.default"],
});
const host = new URL(ep.https_graph_url).host;
const client = Client.initWithMiddleware({
  authProvider,
  baseUrl: `${ep.https_graph_url}/`,
  customHosts: new Set([new URL(ep.https_graph_url).hostname, host]),
});
try {
  const first = await client.api("/users").select("id,userPrincipalName").top(7).get();
  const ids = [];
  const iterator = new PageIterator(client, first, (user) => {
    ids.push(user.id);
    return true;
  });
  await iterator.iterate();
  const pages = Math.ceil(ids.length / 7);
  console.log(JSON.stringify({ ids, pages }));
} catch (error) {
  console.log(JSON.stringify({ error: String(error?.message ?? error), code: error?.code ?? null, status: error?.statusCode ?? null }));
  process.exitCode = 1;
}
