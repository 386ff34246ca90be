"""The node agent's credential endpoint, attacked over raw sockets: Host smuggling (finding 8),
absolute-form targets, path tricks, methods, Authorization abuse, oversized headers. The agent is
`podid-agent` on 127.0.0.1 in front of the session's `podid server`; every answer is checked
against the reference agent's exact status and text."""
import json

import pytest

import helpers as h
import jwt_tools as jt

HOSTS = "[169.254.170.23 fd00:ec2::23 127.0.0.1]"


def wrong_host(name):
    return f"Access Denied. Called agent through invalid address, please use either {HOSTS} address not {name}\n"


def get(agent, head, body=b""):
    """Sends a request head (request line + headers, CRLF-separated, no final blank line)."""
    data = head.encode() + b"\r\nConnection: close\r\n\r\n" + body
    return h.raw_http("127.0.0.1", agent.port, data)


def creds(agent, token, host="169.254.170.23", target="/v1/credentials", method="GET"):
    return get(agent, f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}")


def test_control_credentials_are_served(agent, world):
    status, head, body = creds(agent, world.token(pod="control"))
    assert status == 200, body
    assert json.loads(body)["AccessKeyId"].startswith("ASIA")


# --- Host (finding 8) -----------------------------------------------------------------------


@pytest.mark.parametrize("host,shown", [
    ("evil.example", "evil.example"),
    ("evil.example:80", "evil.example"),
    ("169.254.170.23.evil.example", "169.254.170.23.evil.example"),
    ("169.254.169.254", "169.254.169.254"),
    ("127.0.0.1.nip.io", "127.0.0.1.nip.io"),
])
def test_wrong_host(agent, world, host, shown):
    status, head, body = creds(agent, world.token(), host=host)
    assert (status, body.decode()) == (403, wrong_host(shown))
    assert "content-type: text/plain; charset=utf-8" in head.lower()


def test_no_host_header(agent, world):
    status, _, body = get(agent, f"GET /v1/credentials HTTP/1.1\r\nAuthorization: {world.token()}")
    assert (status, body.decode()) == (400, "400 Bad Request: missing required Host header")


def test_no_host_header_over_http10_meets_the_host_check(agent, world):
    status, _, body = get(agent, f"GET /v1/credentials HTTP/1.0\r\nAuthorization: {world.token()}")
    assert (status, body.decode()) == (403, wrong_host(""))


@pytest.mark.parametrize("hosts", [
    "Host: 169.254.170.23\r\nHost: evil.example",
    "Host: evil.example\r\nHost: 169.254.170.23",
    "Host: 169.254.170.23\r\nHost: 169.254.170.23",
], ids=["good-then-evil", "evil-then-good", "good-twice"])
def test_duplicate_host_headers(agent, world, hosts):
    status, head, body = get(agent, f"GET /v1/credentials HTTP/1.1\r\n{hosts}\r\nAuthorization: {world.token()}")
    assert (status, body.decode()) == (400, "400 Bad Request: too many Host headers")
    assert "connection: close" in head.lower()


def test_duplicate_host_closes_a_keep_alive_connection(agent, world):
    """The refusal ends the connection: a request pipelined behind it is never answered."""
    tok = world.token()
    data = (f"GET /v1/credentials HTTP/1.1\r\nHost: 169.254.170.23\r\nHost: evil.example\r\nAuthorization: {tok}\r\n\r\n"
            f"GET /v1/credentials HTTP/1.1\r\nHost: 169.254.170.23\r\nAuthorization: {tok}\r\n\r\n").encode()
    status, head, rest = h.raw_http("127.0.0.1", agent.port, data)
    assert status == 400 and b"HTTP/1.1 200" not in rest


@pytest.mark.parametrize("target,shown", [
    ("http://evil.example/v1/credentials", "evil.example"),
    ("http://evil.example:80/v1/credentials", "evil.example"),
    ("http://169.254.169.254/v1/credentials", "169.254.169.254"),
])
def test_absolute_form_target_with_another_host(agent, world, target, shown):
    status, _, body = creds(agent, world.token(), host="169.254.170.23", target=target)
    assert (status, body.decode()) == (403, wrong_host(shown))


def test_absolute_form_target_with_userinfo(agent, world):
    status, _, body = creds(agent, world.token(), target="http://169.254.170.23@evil.example/v1/credentials")
    assert (status, body.decode()) == (403, wrong_host("169.254.170.23@evil.example"))


# --- paths and methods ----------------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "/v1/credentials/", "/v1/credentials/../credentials", "/v1/x/../credentials", "//v1/credentials",
    "/v1/%63redentials", "/v1/credentials%2f", "/V1/credentials", "/v1/credentials;x", "/v1/credentials/x",
])
def test_path_tricks(agent, world, target):
    status, _, body = creds(agent, world.token(), target=target)
    assert (status, body.decode()) == (404, "404 page not found\n")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_get_the_host_check(agent, world, method):
    """The reference serves /v1/credentials to any method; the host check still applies."""
    status, _, body = creds(agent, world.token(), host="evil.example", method=method)
    assert (status, body.decode()) == (403, wrong_host("evil.example"))


def test_connect_method(agent):
    """CONNECT to the metadata address through the agent: no tunnel, Go's 404."""
    status, _, body = get(agent, "CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: 169.254.169.254:80")
    assert (status, body.decode()) == (404, "404 page not found\n")


# --- Authorization --------------------------------------------------------------------------


def test_missing_authorization(agent):
    status, _, body = get(agent, "GET /v1/credentials HTTP/1.1\r\nHost: 169.254.170.23")
    assert (status, body.decode()) == (400, "Service account token cannot be empty\n")


def test_empty_authorization(agent):
    status, _, body = get(agent, "GET /v1/credentials HTTP/1.1\r\nHost: 169.254.170.23\r\nAuthorization: ")
    assert (status, body.decode()) == (400, "Service account token cannot be empty\n")


@pytest.mark.parametrize("case,reason", [
    ("bearer", "token is malformed: header is not base64url or too long"),
    ("not-json-header", "token is malformed: header is not a JSON object"),
    ("alg-none", "token algorithm is not accepted"),
    ("hs256", "token algorithm is not accepted"),
    ("two-segments", "token is malformed: expected three dot-separated segments"),
])
def test_malformed_authorization(agent, world, case, reason):
    good = world.token()
    token = {
        "bearer": "Bearer " + good,
        "not-json-header": "bm90IGpzb24." + good.split(".", 1)[1],
        "alg-none": jt.none_alg(world.claims(), kid=world.key.kid),
        "hs256": jt.hs256_with_public_key(world.key, world.claims()),
        "two-segments": "abc.def",
    }[case]
    status, _, body = creds(agent, token)
    assert (status, body.decode()) == (400, f"Service account token cannot be parsed: {reason}\n")


def test_expired_token(agent, world):
    import time
    status, _, body = creds(agent, world.token(now=int(time.time()) - 7200, ttl=600))
    assert (status, body.decode()) == (400, "Service account token failed basic claim validations: token is expired\n")


def test_forged_token_is_refused_by_eks_auth(agent, world):
    status, _, body = creds(agent, jt.flip_signature(world.token(pod="forged")))
    text = body.decode()
    assert status == 400
    assert text.startswith("[") and text.endswith(
        "]: (InvalidTokenException): The service account token is invalid: token signature is invalid., fault: client\n")


def test_token_of_another_service_account(agent, world):
    status, _, body = creds(agent, world.token(sa="not-associated", pod="other-sa"))
    assert status == 404
    assert body.decode().endswith(
        "]: (ResourceNotFoundException): No Pod Identity Association found for service account "
        f"default/not-associated in cluster {world.cluster}., fault: client\n")


def test_cached_pod_credentials_not_served_to_a_forged_rotation(agent, world):
    """A pod's credentials are cached by pod uid; a forged token naming that pod uid (another
    service account, bad signature) must not be served from the cache."""
    uid = "6b5e0d7c-0000-4000-8000-000000000001"
    status, _, _ = creds(agent, world.token(pod="victim", pod_uid=uid))
    assert status == 200
    forged = jt.sign_rs256(h.new_key(kid=world.key.kid), world.claims(sa="app", pod="victim", pod_uid=uid))
    status, _, body = creds(agent, forged)
    assert status == 400 and b"ASIA" not in body
    assert body.decode().endswith("(InvalidTokenException): The service account token is invalid: token signature is "
                                  "invalid., fault: client\n")


def test_oversized_headers(agent, world):
    status, _, body = get(agent, "GET /v1/credentials HTTP/1.1\r\nHost: 169.254.170.23\r\n"
                                 f"Authorization: {world.token()}\r\nX-Pad: {'a' * 1_100_000}")
    assert status == 431


def test_oversized_token(agent, world):
    status, _, body = creds(agent, jt.sign_rs256(world.key, {**world.claims(), "pad": "x" * 20000}))
    assert (status, body.decode()) == (400, "Service account token cannot be parsed: token is longer than 16384 bytes\n")


# --- request smuggling ----------------------------------------------------------------------


def test_content_length_and_transfer_encoding(agent, world):
    smuggled = f"GET /v1/credentials HTTP/1.1\r\nHost: 169.254.170.23\r\nAuthorization: {world.token()}\r\n\r\n"
    body = b"0\r\n\r\n" + smuggled.encode()
    data = (b"POST /nothing HTTP/1.1\r\nHost: 169.254.170.23\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" + body)
    status, head, rest = h.raw_http("127.0.0.1", agent.port, data)
    # The chunked body ends at 0; the request behind it is not answered: the connection closes.
    assert (status, rest) == (404, b"404 page not found\n")
    assert "connection: close" in head.lower()


def test_obsolete_line_folding(agent, world):
    status, _, body = get(agent, "GET /v1/credentials HTTP/1.1\r\nHost: evil.example\r\n 169.254.170.23\r\n"
                                 f"Authorization: {world.token()}")
    assert (status, body) == (400, b"")
