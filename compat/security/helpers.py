"""Raw-HTTP tools of the attack suite: a SigV4 signer that can be told to lie (dates, scopes,
signed headers, payload hashes), a client that sends exactly the header list it is given
(duplicates included), a raw-socket client for request smuggling, and the test world."""
import datetime
import hashlib
import hmac
import http.client
import json
import socket
import ssl
import subprocess
import urllib.parse
import uuid

import rsa

import jwt_tools as jt
from podid_compat import ACCOUNT, REGION

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                   "Action": ["sts:AssumeRole", "sts:TagSession"]}],
}
ACCOUNT_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}],
}
NODE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "eks-auth:AssumeRoleForPodIdentity", "Resource": "*"}],
}
SIG_MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
                "Secret Access Key and signing method. Consult the service documentation for details.")
INVALID_TOKEN = "The security token included in the request is invalid."


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def new_key(kid=None):
    """A `jwt_tools.Key` made by openssl in milliseconds (pure-Python RSA takes seconds)."""
    pem = subprocess.run(["openssl", "genrsa", "-traditional", "2048"], capture_output=True, check=True).stdout
    key = jt.Key.__new__(jt.Key)
    key.private = rsa.PrivateKey.load_pkcs1(pem)
    key.public = rsa.PublicKey(key.private.n, key.private.e)
    key.kid = kid or uuid.uuid4().hex
    return key


class World:
    """One cluster with its own signing key, roles, associations and a node user."""

    def __init__(self, server, name, node_resource="*"):
        self.server, self.cluster = server, name
        self.issuer = f"https://oidc.example/{name}"
        self.key = new_key()
        server.register_cluster(name, issuer=self.issuer, jwks=self.key.jwks())
        self.iam = server.client("iam")
        self.eks = server.client("eks")
        user = f"node-{name}"
        self.iam.create_user(UserName=user)
        self.iam.put_user_policy(UserName=user, PolicyName="node", PolicyDocument=policy(
            allow("eks-auth:AssumeRoleForPodIdentity", node_resource)))
        k = self.iam.create_access_key(UserName=user)["AccessKey"]
        self.node_key = (k["AccessKeyId"], k["SecretAccessKey"])
        self.node = server.client("eks-auth", *self.node_key)

    def role(self, name, trust=TRUST, actions=None):
        arn = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        if actions:
            self.iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=policy(allow(actions)))
        return arn

    def associate(self, ns, sa, role_arn, **kw):
        return self.eks.create_pod_identity_association(
            clusterName=self.cluster, namespace=ns, serviceAccount=sa, roleArn=role_arn, **kw)["association"]

    def claims(self, ns="default", sa="app", **kw):
        return jt.claims(self.issuer, ns, sa, **kw)

    def token(self, ns="default", sa="app", **kw):
        return jt.sign_rs256(self.key, self.claims(ns, sa, **kw))

    def assume(self, token, **kw):
        return self.node.assume_role_for_pod_identity(clusterName=self.cluster, token=token, **kw)


# --- SigV4, by hand ---------------------------------------------------------------------------

def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _quote(s):
    return urllib.parse.quote(s, safe="-_.~")


def amz_now(skew_seconds=0):
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=skew_seconds)


def signing_key(secret, date, region, service):
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def canonical_query(query):
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(pairs))


def sign(method, endpoint, path, body=b"", headers=(), *, key, secret, service, region=REGION, token=None,
         when=None, signed=None, payload_hash=None, scope_date=None):
    """Returns (path, header list) of a SigV4-signed request. `signed` names the headers to sign
    (default: all of them); `payload_hash` lies about the body; `when` is the signing time."""
    when = when or amz_now()
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date = scope_date or when.strftime("%Y%m%d")
    host = urllib.parse.urlsplit(endpoint).netloc
    hdrs = [("Host", host), ("X-Amz-Date", amz_date), *headers]
    if token is not None:
        hdrs.append(("X-Amz-Security-Token", token))
    names = sorted({k.lower() for k, _ in hdrs} if signed is None else {s.lower() for s in signed})
    values = {}
    for k, v in hdrs:
        values.setdefault(k.lower(), []).append(" ".join(str(v).split()))
    canonical_headers = "".join(f"{n}:{','.join(values.get(n, []))}\n" for n in names)
    p, _, q = path.partition("?")
    body_hash = payload_hash or hashlib.sha256(body).hexdigest()
    creq = "\n".join([method, _quote_path(p), canonical_query(q), canonical_headers, ";".join(names), body_hash])
    scope = f"{date}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    sig = hmac.new(signing_key(secret, date, region, service), sts.encode(), hashlib.sha256).hexdigest()
    hdrs.append(("Authorization", f"AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={';'.join(names)}, "
                                  f"Signature={sig}"))
    return path, hdrs


def _quote_path(p):
    return urllib.parse.quote(p, safe="/-_.~")


def presign(endpoint, path, *, key, secret, service, region=REGION, expires=60, when=None, token=None):
    """A presigned GET URL path (query-string SigV4)."""
    when = when or amz_now()
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date = when.strftime("%Y%m%d")
    host = urllib.parse.urlsplit(endpoint).netloc
    scope = f"{date}/{region}/{service}/aws4_request"
    p, _, q = path.partition("?")
    params = urllib.parse.parse_qsl(q, keep_blank_values=True) + [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", f"{key}/{scope}"),
        ("X-Amz-Date", amz_date), ("X-Amz-Expires", str(expires)), ("X-Amz-SignedHeaders", "host")]
    if token is not None:
        params.append(("X-Amz-Security-Token", token))
    cq = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(params))
    creq = "\n".join(["GET", _quote_path(p), cq, f"host:{host}\n", "host", hashlib.sha256(b"").hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    sig = hmac.new(signing_key(secret, date, region, service), sts.encode(), hashlib.sha256).hexdigest()
    return f"{p}?{cq}&X-Amz-Signature={sig}"


# --- sending ----------------------------------------------------------------------------------

class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self):
        return json.loads(self.body)

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def error(self):
        """(code, message) of an AWS error in any of podid's protocols."""
        if self.body.lstrip().startswith(b"{"):
            doc = json.loads(self.body)
            code = self.header("x-amzn-ErrorType") or doc.get("__type", "")
            return code.split(":")[0].split("#")[-1], doc.get("message", doc.get("Message"))
        import xml.etree.ElementTree as ET
        root = ET.fromstring(self.body)
        ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
        err = root.find(f"{ns}Error")
        return err.findtext(f"{ns}Code"), err.findtext(f"{ns}Message")

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:500]!r}>"


def send(endpoint, method, path, headers=(), body=b""):
    """Sends exactly `headers` (a list: duplicates and order kept) with http.client."""
    u = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        has_length = any(k.lower() == "content-length" for k, _ in headers)
        for k, v in headers:
            conn.putheader(k, v)
        if body and not has_length:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        r = conn.getresponse()
        return Answer(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def signed_call(server, method, path, body=b"", headers=(), service="eks", key=None, secret=None, **kw):
    path, hdrs = sign(method, server.endpoint, path, body, headers, key=key or server.access_key,
                      secret=secret or server.secret_key, service=service, **kw)
    return send(server.endpoint, method, path, hdrs, body)


FORM = ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
JSON = ("Content-Type", "application/json")


def query_call(server, service, params, **kw):
    body = urllib.parse.urlencode(params).encode()
    return signed_call(server, "POST", "/", body, [FORM], service=service, **kw)


def iam_call(server, action, **params):
    kw = {k: params.pop(k) for k in list(params) if k in ("key", "secret", "token", "when", "region")}
    return query_call(server, "iam", {"Action": action, "Version": "2010-05-08", **params}, **kw)


def raw_http(host, port, data, timeout=10):
    """Writes `data` on a fresh connection and reads until the server closes; (status, head, body)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                c = s.recv(65536)
            except ConnectionResetError:
                break
            if not c:
                break
            chunks.append(c)
    answer = b"".join(chunks)
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head[9:12]) if len(head) >= 12 else 0
    return status, head.decode("latin-1"), body


def https(webhook, method, path, body=b"", headers=()):
    ctx = ssl.create_default_context(cafile=webhook.ca)
    conn = http.client.HTTPSConnection("127.0.0.1", webhook.port, context=ctx, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        r = conn.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        conn.close()
