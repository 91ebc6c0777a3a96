#!/usr/bin/env python3
"""An OAuth 2.1 authorization server and an MCP server that demands its tokens, in one process
on host loopback, for the OAuth end-to-end test (tests/e2e/mcp-oauth.sh).

  oauth_server.py --port 18841 --access-ttl 8 --stats FILE

Both come from the `mcp` package's server-side auth (PyPI): its routes serve the authorization
server's metadata, dynamic client registration, /authorize, /token and /revoke, and the MCP
server at /mcp refuses any request without a live token issued for it (RFC 8707 resource
checked), answering 401 with the protected resource metadata's address. The provider behind
them is this file's: it approves every authorization at once (the "user" always says yes), issues
access tokens that live --access-ttl seconds and refresh tokens that rotate, and drops a
client's tokens when one is revoked. Every issued token and every event is written to --stats
(JSON, rewritten on each change), so the test can check where tokens went.

POST /test/refuse-refresh makes later refreshes fail with invalid_grant.
"""
import argparse
import asyncio
import json
import secrets
import time

import uvicorn
import mcp.server.auth.handlers.revoke as revoke_handler
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import (AccessToken, AuthorizationCode, RefreshToken, TokenError,
                                      construct_redirect_uri)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthToken
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


# mcp 2.3.0's revocation endpoint requires a client_secret field even from a public client
# (RFC 7009 §2.1 asks only for client authentication, which a public client does with its id):
# the model's field gets its default, and the library does the rest.
revoke_handler.RevocationRequest.model_fields["client_secret"].default = None
revoke_handler.RevocationRequest.model_rebuild(force=True)


class Provider:
    def __init__(self, ttl, stats_path, resource):
        self.ttl = ttl
        self.stats_path = stats_path
        self.resource = resource
        self.clients, self.codes, self.access, self.refresh = {}, {}, {}, {}
        self.refuse = False
        self.stats = {"registrations": [], "authorizations": [], "issued": [], "refreshes": 0,
                      "refused_refreshes": 0, "revocations": [], "tool_calls": []}
        self.save()

    def save(self):
        with open(self.stats_path + ".tmp", "w") as f:
            json.dump(self.stats, f)
        import os
        os.replace(self.stats_path + ".tmp", self.stats_path)

    async def get_client(self, client_id):
        return self.clients.get(client_id)

    async def register_client(self, info):
        self.clients[info.client_id] = info
        self.stats["registrations"].append({"client_id": info.client_id, "method": info.token_endpoint_auth_method,
                                            "redirect_uris": [str(u) for u in info.redirect_uris or []]})
        self.save()

    async def authorize(self, client, params):
        code = secrets.token_urlsafe(32)
        self.codes[code] = AuthorizationCode(
            code=code, scopes=params.scopes or ["mcp"], expires_at=time.time() + 300, client_id=client.client_id,
            code_challenge=params.code_challenge, redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly, resource=params.resource)
        self.stats["authorizations"].append({"client_id": client.client_id, "resource": params.resource,
                                             "scopes": params.scopes, "state": bool(params.state)})
        self.save()
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(self, client, code):
        found = self.codes.get(code)
        return found if found and found.client_id == client.client_id else None

    async def exchange_authorization_code(self, client, code):
        self.codes.pop(code.code, None)
        return self.issue(client.client_id, code.scopes, code.resource)

    def issue(self, client_id, scopes, resource):
        access, refresh = "at-" + secrets.token_urlsafe(24), "rt-" + secrets.token_urlsafe(24)
        self.access[access] = AccessToken(token=access, client_id=client_id, scopes=scopes,
                                          expires_at=int(time.time() + self.ttl), resource=resource)
        self.refresh[refresh] = RefreshToken(token=refresh, client_id=client_id, scopes=scopes, resource=resource)
        self.stats["issued"] += [access, refresh]
        self.save()
        return OAuthToken(access_token=access, token_type="Bearer", expires_in=self.ttl, refresh_token=refresh,
                          scope=" ".join(scopes))

    async def load_refresh_token(self, client, token):
        found = self.refresh.get(token)
        return found if found and found.client_id == client.client_id else None

    async def exchange_refresh_token(self, client, token, scopes):
        if self.refuse:
            self.stats["refused_refreshes"] += 1
            self.save()
            raise TokenError("invalid_grant", "refresh refused by the test")
        self.refresh.pop(token.token, None)  # rotation: the old one is used once
        self.stats["refreshes"] += 1
        return self.issue(client.client_id, scopes or token.scopes, token.resource)

    async def load_access_token(self, token):
        found = self.access.get(token)
        if found and found.expires_at and found.expires_at < time.time():
            return None
        return found

    async def revoke_token(self, token):
        for store in (self.access, self.refresh):
            for key in [k for k, v in store.items() if v.client_id == token.client_id]:
                del store[key]
        self.stats["revocations"].append(type(token).__name__)
        self.save()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--access-ttl", type=int, default=8)
    p.add_argument("--stats", required=True)
    p.add_argument("--https-port", type=int, help="the same app over TLS too (the API a sandboxed server calls)")
    p.add_argument("--cert")
    p.add_argument("--key")
    args = p.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    provider = Provider(args.access_ttl, args.stats, base + "/mcp")
    server = MCPServer(
        "oauth-test", auth_server_provider=provider,
        auth=AuthSettings(issuer_url=base, resource_server_url=base + "/mcp", required_scopes=["mcp"],
                          validate_token_resource=True,
                          client_registration_options=ClientRegistrationOptions(enabled=True, valid_scopes=["mcp"]),
                          revocation_options=RevocationOptions(enabled=True)))

    @server.tool()
    def oauth_whoami() -> str:
        """Who the token says the caller is (never the token)."""
        token = get_access_token()
        provider.stats["tool_calls"].append("oauth_whoami")
        provider.save()
        return f"client {token.client_id} scopes {' '.join(token.scopes)} resource {token.resource}"

    async def api(request: Request):
        """An API a sandboxed server calls with the token its proxy injects: 200 for a live
        token (with or without "Bearer "), 401 otherwise. It never answers with the token."""
        given = request.headers.get("authorization", "")
        token = given[7:] if given.lower().startswith("bearer ") else given
        found = await provider.load_access_token(token)
        provider.stats.setdefault("api_calls", []).append("ok" if found else "denied")
        provider.save()
        if not found:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({"client": found.client_id, "scopes": found.scopes})

    @server.custom_route("/test/refuse-refresh", methods=["POST"])
    async def refuse(request: Request):
        provider.refuse = True
        return JSONResponse({"refuse": True})

    app = server.streamable_http_app()
    configs = [uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning")]
    if args.https_port:
        # A proxy injects a credential only into requests it can read inside TLS: the API is https.
        api_app = Starlette(routes=[Route("/api/whoami", api, methods=["GET"])])
        configs.append(uvicorn.Config(api_app, host="127.0.0.1", port=args.https_port, log_level="warning",
                                      ssl_certfile=args.cert, ssl_keyfile=args.key))

    async def serve():
        await asyncio.gather(*(uvicorn.Server(config).serve() for config in configs))

    print(f"ready on {base}", flush=True)
    asyncio.run(serve())


if __name__ == "__main__":
    main()
