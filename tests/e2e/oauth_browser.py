#!/usr/bin/env python3
"""The scripted browser of the OAuth end-to-end test, run as $BROWSER by `airlock mcp oauth
authorize`: it opens the authorization URL as a browser would (the test's authorization server
approves at once and redirects), checks the request carried PKCE (S256), a state and the
resource, and follows the redirect to Airlock's loopback listener. What it saw goes to the file
in $OAUTH_BROWSER_LOG as one JSON line; it never sees a token.

  oauth_browser.py URL
"""
import http.client
import json
import os
import sys
import urllib.parse


def get(url):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    conn.request("GET", parts.path + ("?" + parts.query if parts.query else ""))
    response = conn.getresponse()
    body = response.read().decode(errors="replace")
    return response.status, response.getheader("Location"), body


def main():
    url = sys.argv[1]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    seen = {"url_params": sorted(query), "method": query.get("code_challenge_method"),
            "resource": query.get("resource"), "has_state": bool(query.get("state")),
            "redirect_uri": query.get("redirect_uri")}
    status, location, _ = get(url)
    seen["authorize_status"] = status
    if location:
        redirect = urllib.parse.urlsplit(location)
        seen["redirect_to"] = f"{redirect.scheme}://{redirect.netloc}{redirect.path}"
        # A stale state first: Airlock must answer it 400 and keep waiting.
        stale = urllib.parse.urlunsplit(redirect._replace(query="code=x&state=not-the-state"))
        seen["stale_state_status"] = get(stale)[0]
        seen["callback_status"], _, seen["callback_page"] = get(location)
    with open(os.environ["OAUTH_BROWSER_LOG"], "a") as f:
        f.write(json.dumps(seen) + "\n")


if __name__ == "__main__":
    main()
