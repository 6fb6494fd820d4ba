#!/usr/bin/env python3
"""Generate the open-redirect payloads and the legitimate targets for RedirectValidatorTests.

Allowed hosts in the tests: app.example.test (a route), authn.example.test (the authenticate
service), fwd.example.test (forward auth). The attacker's hosts are evil.test and 127.0.0.1 (not
allowed for browser logins). Every payload names or smuggles an attacker host, or uses a
scheme, encoding or character that a strict validator must refuse.

Run from this folder: python3 generate_redirects.py  (writes open-redirects.txt and
legitimate-redirects.txt; the output is sorted and stable).
"""

import itertools
import pathlib

ROUTE = "app.example.test"
EVIL = "evil.test"

# Templates of attacks on the authority or the scheme. {r} is the route host, {e} the attacker's.
BASE = [
    "//{e}",
    "//{e}/",
    "///{e}",
    "////{e}",
    "/\\{e}",
    "\\\\{e}",
    "\\/{e}",
    "/\\/{e}",
    "{e}",
    "{e}/path",
    "https:{e}",
    "https:/{e}",
    "https:\\\\{e}",
    "https:/\\{e}",
    "https://{e}",
    "https://{e}/",
    "https://{e}/{r}",
    "https://{e}?{r}",
    "https://{e}#{r}",
    "https://{e}#@{r}",
    "https://{e}?@{r}",
    "https://{e}\\@{r}",
    "https://{e}\\{r}",
    "https://{r}@{e}",
    "https://{r}:443@{e}",
    "https://{r}%40{e}",
    "https://user:pass@{r}/",
    "https://{r}.{e}",
    "https://{r}.{e}/",
    "https://{e}.{r}.{e}",
    "https://{r}{e}",
    "https://{e}/.{r}",
    "https://{r}\\.{e}",
    "https://{r}%2f%2f{e}",
    "https://{r}%2F{e}",
    "https://{r}%5c{e}",
    "https://{r}%00{e}",
    "https://{r}%09{e}",
    "https://{r}%0d%0a{e}",
    "https://{r}%23@{e}",
    "https://{r}%3f@{e}",
    "https://{r}:@{e}",
    "https://{r}:80@{e}",
    "https://{r}//{e}",
    "https://{r}//{e}/",
    "https://{r}///{e}",
    "https://{r}/\\{e}",
    "https://{r}/\\/{e}",
    "https://{r}/%2f%2f{e}",
    "https://{r}/%2F%2F{e}",
    "https://{r}/%5c{e}",
    "https://{r}/%5C%5C{e}",
    "https://{r}/%252f%252f{e}",
    "https://{r}/%0a{e}",
    "https://{r}/%0d{e}",
    "https://{r}/%09/{e}",
    "https://{r}/%00",
    "https://{r}/\t/{e}",
    "https://{r}/\n/{e}",
    "https://{r}/\r/{e}",
    "https://{r} @{e}",
    " https://{e}",
    "https://{e} ",
    "\thttps://{e}",
    "https:\t//{e}",
    "ht\ttps://{e}",
    "https://\t{e}",
    "https://{r}\n.{e}",
    "https://{e}%00.{r}",
    "https://{e}%E3%80%82{r}",
    "https://{e}\u3002{r}",
    "https://{r}\u3002{e}",
    "https://\uff45vil.test",
    "https://\u0430pp.example.test/",
    "https://app.\u0435xample.test/",
    "https://app.example.test\u2024{e}",
    "https://{r}\u2215\u2215{e}",
    "https://{r}\uff0f\uff0f{e}",
    "https://{r}\uff20{e}",
    "https://\u24d4vil.test",
    "https://APP.EXAMPLE.TEST\u0130",
    "https://app.example.tes\u0442/",
    "https://xn--pp-8cd.example.test/",
    "https://{r}./",
    "https://.{r}/",
    "https://{r}..",
    "https://[::ffff:7f00:1]/",
    "https://[{r}]/",
    "https://127.0.0.1/",
    "https://localhost/",
    "https://0x7f.0.0.1/",
    "https://2130706433/",
    "ftp://{r}/",
    "file:///etc/passwd",
    "gopher://{r}/",
    "ws://{r}/",
    "javascript:alert(1)",
    "javascript://{r}/%0aalert(1)",
    "javascript://%0aalert(1)//{r}",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "jav&#x09;ascript:alert(1)",
    " javascript:alert(1)",
    "\x01javascript:alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html,<script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:text/html,x",
    "https:",
    "https://",
    "https:///",
    "https:// {r}",
    "https://{r}:99999/",
    "https://{r}:-1/",
    "https://{r}:port/",
    "http:/{r}",
    "http:{r}",
    "/",
    "/path",
    "?next=https://{r}/",
    "#https://{r}/",
    ".{e}",
    "@{e}",
    "{r}/",
    "",
    " ",
    "https://{e}/%2e%2e/{r}",
    "https://{e}/..;/{r}",
    "//{r}@{e}",
    "//{e}%2f@{r}",
    "//{e}%5c@{r}",
    "https://{e}%2f@{r}",
    "https://{e}%5c@{r}",
    "https://{e}%23@{r}",
    "https://{e}%3f@{r}",
    "https://{e}%252f@{r}",
    "https://%65vil.test/",
    "https://%61pp.example.test/",
    "https://app%2eexample%2etest/",
    "https://app.example.test%2e/",
    "https://{r}%2e{e}/",
]

# Characters whose encodings the variants try.
SPECIAL = "/\\@?#:. \t\n\r"


def encode_chars(text, chars, upper=True, double=False):
    out = []
    for ch in text:
        if ch in chars or ord(ch) > 0x7E:
            for byte in ch.encode("utf-8"):
                code = ("%%%02X" if upper else "%%%02x") % byte
                if double:
                    code = "%25" + code[1:]
                out.append(code)
        else:
            out.append(ch)
    return "".join(out)


def mixed_case(text):
    """Flip the case of every other letter of the scheme and the hex digits of escapes."""
    out = []
    for i, ch in enumerate(text):
        out.append(ch.upper() if i % 2 else ch.lower())
    return "".join(out)


def variants(payload):
    yield payload
    yield encode_chars(payload, SPECIAL, upper=True)
    yield encode_chars(payload, SPECIAL, upper=False)
    yield encode_chars(payload, SPECIAL, upper=True, double=True)
    yield encode_chars(payload, "/\\@", upper=False, double=True)
    yield mixed_case(encode_chars(payload, SPECIAL, upper=False))
    # Encode only after the scheme, so the result can still parse as a URL.
    if "://" in payload:
        scheme, rest = payload.split("://", 1)
        yield scheme + "://" + encode_chars(rest, "/\\@?#", upper=True)
        yield scheme + "://" + encode_chars(rest, "/\\@?#", upper=False, double=True)
        yield mixed_case(scheme) + "://" + rest


def main():
    here = pathlib.Path(__file__).resolve().parent
    payloads = set()
    for template, attacker in itertools.product(BASE, [EVIL, "127.0.0.1"]):
        base = template.format(r=ROUTE, e=attacker)
        for variant in variants(base):
            payloads.add(variant)
    # Escapes that would make an otherwise legitimate target unsafe are kept; the plain legitimate
    # targets are removed in case a variant reproduces one.
    legitimate = [
        "https://app.example.test/",
        "https://app.example.test",
        "https://app.example.test/path?query=1",
        "https://APP.example.TEST/Path",
        "https://app.example.test:8443/x",
        "http://app.example.test/plain-http",
        "https://app.example.test/a%20b?q=a%2Fb%5Cc%0A#frag",
        "https://app.example.test/%C3%BC",
        "https://app.example.test/x?next=https://evil.test/",
        "https://app.example.test/?redirect=%2F%2Fevil.test",
        "https://app.example.test/a/b/../c",
        "https://app.example.test/.pomerium/callback/",
        "https://authn.example.test/.pomerium/sign_in",
        "https://fwd.example.test/verify?uri=https://app.example.test/",
        "https://app.example.test/#@evil.test",
        "https://app.example.test/path;param",
        "https://app.example.test/@evil.test",
    ]
    payloads -= set(legitimate)
    lines = sorted(p for p in payloads)
    # One payload per line: escape the characters a line cannot hold, as \t, \n, \r and \\.
    def escape(text):
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    (here / "open-redirects.txt").write_text("".join(escape(p) + "\n" for p in lines), encoding="utf-8")
    (here / "legitimate-redirects.txt").write_text("".join(t + "\n" for t in legitimate), encoding="utf-8")
    print(f"{len(lines)} payloads, {len(legitimate)} legitimate targets")


if __name__ == "__main__":
    main()
