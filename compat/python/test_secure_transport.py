"""`aws:SecureTransport` is in every request's context, as AWS sets it: `true` over TLS, `false`
over plain HTTP. A policy that denies insecure calls (the usual `Bool aws:SecureTransport false`
guard) refuses a session over HTTP and allows it over TLS."""
import json
import ssl
import subprocess
import urllib.request
import uuid

import botocore.exceptions
import pytest

from conftest import ACCOUNT, Server

GUARDED = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ],
}


def guarded_session(server, **client_kw):
    iam = server.client("iam", **client_kw)
    name = "guarded-" + uuid.uuid4().hex[:6]
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                       "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="guard", PolicyDocument=json.dumps(GUARDED))
    c = server.client("sts", **client_kw).assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    session = server.client("iam", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"], **client_kw)
    return name, arn, session


def test_plain_http_is_not_secure_transport(server):
    name, arn, session = guarded_session(server)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        session.get_role(RoleName=name)
    err = e.value.response["Error"]
    assert err["Code"] == "AccessDenied"
    assert err["Message"].endswith(f"iam:GetRole on resource: {arn} with an explicit deny in an identity-based policy")


@pytest.fixture
def tls_server(tmp_path):
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    s = Server(str(tmp_path / "data"), extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    s.endpoint = s.endpoint.replace("http://", "https://")
    # The harness polls /healthz with urllib: trust the test's certificate for that.
    urllib.request.install_opener(urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(cert)))))
    try:
        s.start()
        yield s, str(cert)
    finally:
        urllib.request.install_opener(None)
        s.stop()


def test_tls_is_secure_transport(tls_server):
    server, cert = tls_server
    name, arn, session = guarded_session(server, verify=cert)
    assert session.get_role(RoleName=name)["Role"]["Arn"] == arn
