"""SigV4: unsigned, unknown-key, tampered and mis-scoped requests get the real services' errors."""
import json
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from conftest import REGION


def raw(server, method, path, headers=None, data=b""):
    req = urllib.request.Request(server.endpoint + path, data=data or None, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def signed(server, method, path, body=b"", service="eks", region=REGION, key=None, secret=None, token=None):
    creds = botocore.credentials.Credentials(key or server.access_key, secret or server.secret_key, token)
    req = botocore.awsrequest.AWSRequest(method=method, url=server.endpoint + path, data=body,
                                         headers={"Content-Type": "application/json"})
    botocore.auth.SigV4Auth(creds, service, region).add_auth(req)
    return req


def send(req):
    prepared = req.prepare()
    return raw_prepared(prepared)


def raw_prepared(prepared):
    r = urllib.request.Request(prepared.url, data=prepared.body or None, method=prepared.method,
                               headers=dict(prepared.headers.items()))
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def error_type(headers):
    return {k.lower(): v for k, v in headers.items()}.get("x-amzn-errortype")


def test_unsigned_request(server):
    status, headers, body = raw(server, "GET", "/clusters")
    assert status == 403 and error_type(headers) == "MissingAuthenticationTokenException"
    assert json.loads(body)["message"] == "Missing Authentication Token"


def test_unknown_access_key(server):
    status, headers, _ = send(signed(server, "GET", "/clusters", key="AKIAUNKNOWNUNKNOWN00"))
    assert status == 403 and error_type(headers) == "UnrecognizedClientException"


def test_wrong_secret(server):
    status, headers, _ = send(signed(server, "GET", "/clusters", secret="x" * 40))
    assert status == 403 and error_type(headers) == "InvalidSignatureException"


def test_tampered_body_after_signing(server, cluster):
    req = signed(server, "POST", f"/clusters/{cluster}/pod-identity-associations",
                 json.dumps({"namespace": "n", "serviceAccount": "s", "roleArn": "arn:aws:iam::000000000000:role/r"}).encode())
    prepared = req.prepare()
    prepared.body = prepared.body.replace(b'"s"', b'"t"')
    status, headers, _ = raw_prepared(prepared)
    assert status == 403 and error_type(headers) == "InvalidSignatureException"
    assert server.client("eks").list_pod_identity_associations(clusterName=cluster)["associations"] == []


def test_tampered_path(server, cluster):
    prepared = signed(server, "GET", f"/clusters/{cluster}").prepare()
    prepared.url = prepared.url.replace(cluster, "other")
    status, headers, _ = raw_prepared(prepared)
    assert status == 403 and error_type(headers) == "InvalidSignatureException"


def test_wrong_service_and_region_scope(server):
    status, headers, body = send(signed(server, "GET", "/clusters", service="s3"))
    assert status == 403 and error_type(headers) == "InvalidSignatureException"
    assert "scoped to correct service" in json.loads(body)["message"]
    status, headers, body = send(signed(server, "GET", "/clusters", region="eu-west-1"))
    assert status == 403 and "valid region" in json.loads(body)["message"]


def test_incomplete_authorization_header(server):
    status, headers, _ = raw(server, "GET", "/clusters", headers={
        "Authorization": "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abc", "X-Amz-Date": "20240101T000000Z"})
    assert status == 403 and error_type(headers) == "IncompleteSignatureException"


def test_oversized_body_is_refused(server, cluster):
    body = b'{"namespace":"' + b"a" * (2 * 1024 * 1024) + b'"}'
    status, headers, _ = send(signed(server, "POST", f"/clusters/{cluster}/pod-identity-associations", body))
    assert status == 413


def test_boto3_raises_the_right_classes(server):
    import botocore.exceptions
    eks = server.client("eks", access_key="AKIAUNKNOWNUNKNOWN00")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        eks.list_clusters()
    assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"
