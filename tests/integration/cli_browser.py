"""A stand-in browser for pomerium-cli tests, started through $BROWSER with the sign-in URL.

It follows the redirects to oidc-provider-mock, posts the login form as the user in
CLI_BROWSER_USER, and follows the redirects back to the command's local callback. Names under
.example.test connect to 127.0.0.1; TLS is checked against CLI_BROWSER_CA. Each run appends one
JSON line to CLI_BROWSER_LOG with the status of the last response, and writes nothing to
standard output, which belongs to pomerium-cli.
usage: cli_browser.py URL
"""
import json
import os
import sys
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests
import urllib3.util.connection

_connect = urllib3.util.connection.create_connection


def _loopback(address, *args, **kwargs):
    host, port = address
    if host.endswith(".example.test"):
        host = "127.0.0.1"
    return _connect((host, port), *args, **kwargs)


urllib3.util.connection.create_connection = _loopback


class LoginForm(HTMLParser):
    """The action of the first POST form that has a `sub` field."""

    def __init__(self):
        super().__init__()
        self.action = None
        self._form = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form" and (attributes.get("method") or "get").lower() == "post":
            self._form = {"action": attributes.get("action") or "", "fields": set()}
        elif tag in ("input", "button") and self._form is not None and attributes.get("name"):
            self._form["fields"].add(attributes["name"])

    def handle_endtag(self, tag):
        if tag == "form" and self._form is not None:
            if "sub" in self._form["fields"] and self.action is None:
                self.action = self._form["action"]
            self._form = None


def follow(session, response, hops):
    while response.is_redirect and len(hops) < 20:
        target = urljoin(response.url, response.headers["Location"])
        hops.append(target.split("?")[0])
        response = session.get(target, allow_redirects=False, timeout=10)
    return response


def main():
    url = sys.argv[1]
    session = requests.Session()
    session.trust_env = False
    session.verify = os.environ["CLI_BROWSER_CA"]
    hops = []
    record = {"url": url.split("?")[0]}
    try:
        page = follow(session, session.get(url, allow_redirects=False, timeout=10), hops)
        form = LoginForm()
        form.feed(page.text)
        if form.action is None:
            record.update(error=f"no login form at {page.url}: {page.status_code}")
        else:
            posted = session.post(
                urljoin(page.url, form.action), data={"sub": os.environ["CLI_BROWSER_USER"]},
                allow_redirects=False, timeout=10)
            final = follow(session, posted, hops)
            record.update(status=final.status_code, last=final.url.split("?")[0], page=final.text[:200])
    except requests.RequestException as error:
        record.update(error=str(error))
    record["hops"] = hops
    with open(os.environ["CLI_BROWSER_LOG"], "a") as log:
        log.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
