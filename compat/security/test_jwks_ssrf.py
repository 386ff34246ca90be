"""Finding 7: a cluster's `jwksUri` is a URL the server fetches, so whoever may register a cluster
must not be able to aim it at loopback, link-local or metadata addresses, however spelled, nor
reach them through names or redirects (docs/server.md, "Where jwksUri fetches may go")."""
import http.server
import json
import socket
import ssl
import subprocess
import threading
import uuid

import botocore.exceptions
import pytest

import helpers as h

DOC = ' (docs/server.md, "Where jwksUri fetches may go")'


def refused(ip, kind):
    return f"jwksUri is refused: {ip} is a {kind} address, refused unless the server's allowed networks cover it" + DOC


def register(server, uri, name=None, **extra):
    body = {"name": name or "sec-jwks-" + uuid.uuid4().hex[:6], "issuer": "https://oidc.example/x", "jwksUri": uri,
            **extra}
    return h.signed_call(server, "POST", "/podid/v1/clusters", json.dumps(body).encode(), [h.JSON], service="podid")


@pytest.mark.parametrize("uri,message", [
    ("https://127.0.0.1/keys", refused("127.0.0.1", "loopback")),
    ("https://127.1/keys", refused("127.0.0.1", "loopback")),
    ("https://[::1]/keys", refused("::1", "loopback")),
    ("https://169.254.169.254/latest/meta-data/", refused("169.254.169.254", "link-local")),
    ("https://169.254.170.23/v1/credentials", refused("169.254.170.23", "link-local")),
    ("https://2852039166/", refused("169.254.169.254", "link-local")),
    ("https://0xa9.0xfe.0xa9.0xfe/", refused("169.254.169.254", "link-local")),
    ("https://0xa9fea9fe/", refused("169.254.169.254", "link-local")),
    ("https://0251.0376.0251.0376/", refused("169.254.169.254", "link-local")),
    ("https://169.254.43518/", refused("169.254.169.254", "link-local")),
    ("https://%31%36%39.254.169.254/", refused("169.254.169.254", "link-local")),
    ("https://[::ffff:169.254.169.254]/", refused("::ffff:169.254.169.254", "link-local")),
    ("https://[::ffff:a9fe:a9fe]/", refused("::ffff:169.254.169.254", "link-local")),
    ("https://[64:ff9b::a9fe:a9fe]/", refused("64:ff9b::a9fe:a9fe", "link-local")),
    ("https://[fe80::1]/", refused("fe80::1", "link-local")),
    ("https://[fd00:ec2::254]/", refused("fd00:ec2::254", "cloud metadata")),
    ("https://[fd00:ec2::23]/v1/credentials", refused("fd00:ec2::23", "cloud metadata")),
    ("https://100.100.100.200/latest/meta-data/", refused("100.100.100.200", "cloud metadata")),
    ("https://0.0.0.0/", refused("0.0.0.0", "unspecified")),
    ("https://255.255.255.255/", refused("255.255.255.255", "multicast or broadcast")),
    ("http://oidc.example.com/keys",
     "jwksUri is refused: the URL scheme is http; only https is allowed (http only where the server allows it)" + DOC),
    ("https://user:pass@oidc.example.com/keys", "jwksUri is refused: the URL must not carry a user name or password" + DOC),
    ("file:///etc/passwd", 'jwksUri is refused: "file:///etc/passwd" is not an absolute http(s) URL' + DOC),
])
def test_registration_refused(server, uri, message):
    r = register(server, uri)
    assert (r.status, *r.error()) == (400, "InvalidParameterException", message)


def test_update_to_a_refused_uri_leaves_the_cluster_as_it_was(server):
    name = "sec-jwks-upd-" + uuid.uuid4().hex[:6]
    assert register(server, "https://oidc.example.com/keys", name=name).status == 200
    r = h.signed_call(server, "POST", f"/podid/v1/clusters/{name}",
                      json.dumps({"jwksUri": "https://2852039166/"}).encode(), [h.JSON], service="podid")
    assert (r.status, *r.error()) == (400, "InvalidParameterException", refused("169.254.169.254", "link-local"))
    status, body = server.admin("GET", f"/podid/v1/clusters/{name}")
    assert "https://oidc.example.com/keys" in json.dumps(body)


# --- at fetch time ----------------------------------------------------------------------------


def make_ca_and_leaf(d):
    """A CA and a leaf for IP 127.0.0.1 signed by it (webpki refuses a self-signed CA as a leaf)."""
    def run(*args):
        subprocess.run(args, check=True, capture_output=True, cwd=d)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "1", "-subj", "/CN=sec-test-ca")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr",
        "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                               "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "leaf.pem", "-days", "1", "-extfile", "ext.cnf")
    return (d / "ca.pem").read_text(), str(d / "leaf.pem"), str(d / "leaf.key")


class Recorder:
    """A plain HTTP(S) server recording every path asked; `routes` maps a path to (status, headers, body)."""

    def __init__(self, host="127.0.0.1", tls=None):
        self.hits, self.routes = [], {}
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                rec.hits.append(self.path)
                status, headers, body = rec.routes.get(self.path, (404, {}, b"no"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        scheme = "https" if tls else "http"
        self.base = f"{scheme}://{host}:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Listener:
    """A bare TCP listener that counts connections (a stand-in for a metadata service)."""

    def __init__(self, host):
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0

    def count(self):
        while True:
            try:
                c, _ = self.sock.accept()
                c.close()
                self.accepted += 1
            except (socket.timeout, BlockingIOError):
                return self.accepted

    def close(self):
        self.sock.close()


def uri_cluster(server, uri, **extra):
    """A cluster keyed by `uri`, a role and an association for default/app; returns (world-ish, key)."""
    name = "sec-jwks-" + uuid.uuid4().hex[:6]
    key = h.new_key()
    issuer = f"https://oidc.example/{name}"
    r = h.signed_call(server, "POST", "/podid/v1/clusters", json.dumps(
        {"name": name, "issuer": issuer, "jwksUri": uri, **extra}).encode(), [h.JSON], service="podid")
    assert r.status == 200, r
    iam = server.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(h.TRUST))["Role"]["Arn"]
    server.client("eks").create_pod_identity_association(clusterName=name, namespace="default", serviceAccount="app",
                                                         roleArn=arn)
    return name, issuer, key


@pytest.fixture(scope="module")
def node(server):
    iam = server.client("iam")
    name = "sec-jwks-node-" + uuid.uuid4().hex[:6]
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="n", PolicyDocument=json.dumps(h.NODE_POLICY))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


def assume(server, node, name, issuer, key):
    import jwt_tools as jt
    client = server.client("eks-auth", *node)
    return client.assume_role_for_pod_identity(clusterName=name, token=jt.sign_rs256(
        key, jt.claims(issuer, "default", "app")))


def unavailable(server, node, name, issuer, key):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(server, node, name, issuer, key)
    r = e.value.response
    assert (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]) == (
        503, "ServiceUnavailableException", f"The signing keys of cluster {name} are unavailable; try again.")


def test_name_resolving_to_loopback_gets_no_connection(server, node):
    """`localhost` registers (names are checked as they resolve) but is never connected to."""
    target = Listener("127.0.0.1")
    try:
        name, issuer, key = uri_cluster(server, f"https://localhost:{target.port}/openid/v1/jwks")
        unavailable(server, node, name, issuer, key)
        assert target.count() == 0
        public = h.send(server.endpoint, "GET", f"/podid/public/clusters/{name}/jwks",
                        [("Host", server.endpoint.split("//")[1])])
        assert public.status == 503 and public.header("Location") is None
    finally:
        target.close()


@pytest.fixture
def lenient_node(lenient_server):
    iam = lenient_server.client("iam")
    name = "node-" + uuid.uuid4().hex[:6]
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="n", PolicyDocument=json.dumps(h.NODE_POLICY))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


def test_redirect_within_allowed_networks_is_followed(lenient_server, lenient_node):
    """The control: 127.0.0.1 is allowed on this server, and a redirect there is followed."""
    origin = Recorder()
    try:
        name, issuer, key = uri_cluster(lenient_server, origin.base + "/start")
        origin.routes = {"/start": (302, {"Location": "/jwks"}, b""),
                         "/jwks": (200, {"Content-Type": "application/json"}, json.dumps(key.jwks()).encode())}
        assert assume(lenient_server, lenient_node, name, issuer, key)["credentials"]["accessKeyId"].startswith("ASIA")
        assert origin.hits == ["/start", "/jwks"]
    finally:
        origin.close()


def test_redirect_to_a_refused_address_is_not_followed(lenient_server, lenient_node):
    inner = Listener("127.0.0.2")
    origin = Recorder()
    try:
        name, issuer, key = uri_cluster(lenient_server, origin.base + "/start")
        origin.routes = {"/start": (302, {"Location": f"http://127.0.0.2:{inner.port}/jwks"}, b"")}
        unavailable(lenient_server, lenient_node, name, issuer, key)
        assert origin.hits == ["/start"]
        assert inner.count() == 0
    finally:
        origin.close()
        inner.close()


def test_redirect_to_instance_metadata_is_not_followed(lenient_server, lenient_node):
    origin = Recorder()
    try:
        name, issuer, key = uri_cluster(lenient_server, origin.base + "/start")
        origin.routes = {"/start": (307, {"Location": "http://169.254.169.254/latest/meta-data/iam/"}, b"")}
        unavailable(lenient_server, lenient_node, name, issuer, key)
        assert origin.hits == ["/start"]
    finally:
        origin.close()


def test_more_than_three_redirects(lenient_server, lenient_node):
    origin = Recorder()
    try:
        name, issuer, key = uri_cluster(lenient_server, origin.base + "/r0")
        origin.routes = {f"/r{i}": (302, {"Location": f"/r{i + 1}"}, b"") for i in range(4)}
        origin.routes["/r4"] = (200, {}, json.dumps(key.jwks()).encode())
        unavailable(lenient_server, lenient_node, name, issuer, key)
        assert origin.hits == ["/r0", "/r1", "/r2", "/r3"]
    finally:
        origin.close()


def test_no_redirect_at_all_with_a_ca_bundle(lenient_server, lenient_node, tmp_path):
    """A cluster with its own CA bundle fetches from its configured endpoint only."""
    ca, cert, keyfile = make_ca_and_leaf(tmp_path)
    origin = Recorder(tls=(cert, keyfile))
    try:
        # The control: the same endpoint without a redirect serves the keys over the pinned CA.
        name, issuer, key = uri_cluster(lenient_server, origin.base + "/jwks", jwksCaBundle=ca)
        origin.routes = {"/jwks": (200, {}, json.dumps(key.jwks()).encode())}
        assert assume(lenient_server, lenient_node, name, issuer, key)["credentials"]["accessKeyId"].startswith("ASIA")
        name, issuer, key = uri_cluster(lenient_server, origin.base + "/start", jwksCaBundle=ca)
        origin.routes = {"/start": (302, {"Location": "/jwks"}, b""),
                         "/jwks": (200, {}, json.dumps(key.jwks()).encode())}
        unavailable(lenient_server, lenient_node, name, issuer, key)
        assert origin.hits == ["/jwks", "/start"]
    finally:
        origin.close()
