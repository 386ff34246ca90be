"""The server's SigV4 edge, attacked with raw HTTP (a hand-rolled signer that can lie) and boto3:
every request that is not exactly what its key's holder signed is refused with the AWS error of
the service family it names (rest-json EKS, query IAM/STS, JSON 1.1 CloudTrail)."""
import json
import urllib.parse
import uuid

import botocore.exceptions
import pytest

import helpers as h
from helpers import INVALID_TOKEN, SIG_MISMATCH

CT = [("Content-Type", "application/x-amz-json-1.1"),
      ("X-Amz-Target", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents")]


def host(server):
    return [("Host", urllib.parse.urlsplit(server.endpoint).netloc)]


# --- no or foreign credentials ------------------------------------------------------------


@pytest.mark.parametrize("api,expected", [
    ("eks", (403, "MissingAuthenticationTokenException", "Missing Authentication Token")),
    ("iam", (403, "MissingAuthenticationToken", "Request is missing Authentication Token")),
    ("cloudtrail", (400, "MissingAuthenticationTokenException", "Missing Authentication Token")),
    ("admin", (403, "MissingAuthenticationTokenException", "Missing Authentication Token")),
])
def test_unsigned(server, api, expected):
    if api == "eks":
        r = h.send(server.endpoint, "GET", "/clusters", host(server))
    elif api == "iam":
        r = h.send(server.endpoint, "POST", "/", host(server) + [h.FORM], b"Action=ListUsers&Version=2010-05-08")
    elif api == "cloudtrail":
        r = h.send(server.endpoint, "POST", "/", host(server) + CT, b"{}")
    else:
        r = h.send(server.endpoint, "GET", "/podid/v1/clusters", host(server))
    assert (r.status, *r.error()) == expected


@pytest.mark.parametrize("service,expected", [
    ("eks", (403, "UnrecognizedClientException", INVALID_TOKEN)),
    ("iam", (403, "InvalidClientTokenId", INVALID_TOKEN)),
    ("sts", (403, "InvalidClientTokenId", INVALID_TOKEN)),
])
def test_unknown_access_key(server, service, expected):
    key, secret = "AKIA" + uuid.uuid4().hex[:16].upper(), "x" * 40
    if service == "eks":
        r = h.signed_call(server, "GET", "/clusters", key=key, secret=secret)
    else:
        r = h.query_call(server, service, {"Action": "GetCallerIdentity" if service == "sts" else "ListUsers",
                                           "Version": "2011-06-15" if service == "sts" else "2010-05-08"},
                         key=key, secret=secret)
    assert (r.status, *r.error()) == expected


def test_wrong_secret(server):
    r = h.iam_call(server, "ListUsers", secret=server.secret_key[:-1] + ("A" if server.secret_key[-1] != "A" else "B"))
    assert (r.status, *r.error()) == (403, "SignatureDoesNotMatch", SIG_MISMATCH)


# --- tampering after signing ----------------------------------------------------------------


def test_tampered_body_creates_nothing(server):
    victim = "tamper-" + uuid.uuid4().hex[:6]
    body = urllib.parse.urlencode({"Action": "CreateUser", "Version": "2010-05-08", "UserName": "harmless"}).encode()
    path, hdrs = h.sign("POST", server.endpoint, "/", body, [h.FORM], key=server.access_key,
                        secret=server.secret_key, service="iam")
    r = h.send(server.endpoint, "POST", path, hdrs, body.replace(b"harmless", victim.encode()[:8]))
    assert (r.status, *r.error()) == (403, "SignatureDoesNotMatch", SIG_MISMATCH)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.client("iam").get_user(UserName=victim[:8])
    assert e.value.response["Error"]["Code"] == "NoSuchEntity"


def test_tampered_path(server):
    path, hdrs = h.sign("GET", server.endpoint, "/clusters/sec", key=server.access_key, secret=server.secret_key,
                        service="eks")
    r = h.send(server.endpoint, "GET", "/clusters/sec-wh", hdrs)
    assert (r.status, *r.error()) == (403, "InvalidSignatureException", SIG_MISMATCH)


def test_tampered_query(server):
    path, hdrs = h.sign("GET", server.endpoint, "/clusters?maxResults=1", key=server.access_key,
                        secret=server.secret_key, service="eks")
    r = h.send(server.endpoint, "GET", "/clusters?maxResults=100", hdrs)
    assert (r.status, *r.error()) == (403, "InvalidSignatureException", SIG_MISMATCH)


def test_query_parameter_appended_after_signing(server):
    path, hdrs = h.sign("GET", server.endpoint, "/clusters", key=server.access_key, secret=server.secret_key,
                        service="eks")
    r = h.send(server.endpoint, "GET", "/clusters?nextToken=x", hdrs)
    assert (r.status, *r.error()) == (403, "InvalidSignatureException", SIG_MISMATCH)


def test_tampered_signed_header(server):
    """X-Amz-Target picks CloudTrail's operation; once signed, it cannot be swapped."""
    path, hdrs = h.sign("POST", server.endpoint, "/", b"{}", CT, key=server.access_key, secret=server.secret_key,
                        service="cloudtrail")
    hdrs = [(k, v.replace("LookupEvents", "StopLogging") if k == "X-Amz-Target" else v) for k, v in hdrs]
    r = h.send(server.endpoint, "POST", path, hdrs, b"{}")
    assert (r.status, *r.error()) == (400, "InvalidSignatureException", SIG_MISMATCH)


def test_signed_header_dropped(server):
    """A header named in SignedHeaders but not sent is part of what was signed: refused."""
    path, hdrs = h.sign("GET", server.endpoint, "/clusters", b"", [("X-Amz-Meta", "1")], key=server.access_key,
                        secret=server.secret_key, service="eks")
    r = h.send(server.endpoint, "GET", path, [x for x in hdrs if x[0] != "X-Amz-Meta"])
    assert (r.status, *r.error()) == (403, "InvalidSignatureException", SIG_MISMATCH)


def test_payload_hash_header_lies_about_the_body(server):
    """x-amz-content-sha256 must hash the body actually sent."""
    body = b"Action=ListUsers&Version=2010-05-08"
    import hashlib
    claimed = hashlib.sha256(b"Action=GetUser&Version=2010-05-08").hexdigest()
    path, hdrs = h.sign("POST", server.endpoint, "/", body, [h.FORM, ("X-Amz-Content-Sha256", claimed)],
                        key=server.access_key, secret=server.secret_key, service="iam", payload_hash=claimed)
    r = h.send(server.endpoint, "POST", path, hdrs, body)
    assert (r.status, *r.error()) == (403, "SignatureDoesNotMatch", SIG_MISMATCH)


def test_signed_headers_without_host(server):
    r = h.signed_call(server, "GET", "/clusters", signed=["x-amz-date"])
    assert (r.status, *r.error()) == (403, "IncompleteSignatureException", "SignedHeaders must include 'host'")


def test_unsigned_session_token_header_added(server):
    """A session token slipped next to a long-term key is not ignored."""
    path, hdrs = h.sign("GET", server.endpoint, "/clusters", key=server.access_key, secret=server.secret_key,
                        service="eks")
    r = h.send(server.endpoint, "GET", path, hdrs + [("X-Amz-Security-Token", "Zm9v")])
    assert (r.status, *r.error()) == (403, "UnrecognizedClientException", INVALID_TOKEN)


# --- scope and time -------------------------------------------------------------------------


def test_wrong_service_scope(server):
    r = h.signed_call(server, "GET", "/clusters", service="s3")
    assert (r.status, *r.error()) == (403, "InvalidSignatureException",
                                      "Credential should be scoped to correct service: 'eks'. ")


def test_eks_signature_replayed_against_eks_auth(server, world):
    """A request signed for `eks` does not authenticate an EKS Auth call (service `eks-auth`)."""
    body = json.dumps({"token": world.token()}).encode()
    r = h.signed_call(server, "POST", f"/clusters/{world.cluster}/assume-role-for-pod-identity", body, [h.JSON],
                      service="eks", key=world.node_key[0], secret=world.node_key[1])
    assert (r.status, *r.error()) == (403, "InvalidSignatureException",
                                      "Credential should be scoped to correct service: 'eks-auth'. ")


def test_wrong_region_scope(server):
    r = h.iam_call(server, "ListUsers", region="eu-west-1")
    assert (r.status, *r.error()) == (403, "SignatureDoesNotMatch", "Credential should be scoped to a valid region. ")


def test_iam_action_signed_for_sts_runs_nothing(server):
    """The query protocol's service is the credential scope's: an IAM write scoped to STS is an
    unknown STS action, not an IAM call."""
    r = h.query_call(server, "sts", {"Action": "CreateUser", "Version": "2010-05-08", "UserName": "via-sts"})
    assert (r.status, *r.error()) == (400, "InvalidAction", "Could not find operation CreateUser for version 2011-06-15")


def test_scope_date_disagrees_with_x_amz_date(server):
    r = h.signed_call(server, "GET", "/clusters", scope_date="20200101")
    assert (r.status, *r.error()) == (403, "InvalidSignatureException", SIG_MISMATCH)


@pytest.mark.parametrize("skew", [-16 * 60, 16 * 60], ids=["past", "future"])
def test_clock_skew(server, skew):
    when = h.amz_now(skew)
    r = h.iam_call(server, "ListUsers", when=when)
    code, message = r.error()
    assert (r.status, code) == (403, "SignatureDoesNotMatch")
    assert message.startswith(f"Signature expired: {when.strftime('%Y%m%dT%H%M%SZ')} is now earlier or later than ")
    assert message.endswith(" by more than 15 min.")


def test_malformed_amz_date(server):
    path, hdrs = h.sign("GET", server.endpoint, "/clusters", key=server.access_key, secret=server.secret_key,
                        service="eks")
    hdrs = [(k, "2024-01-01T00:00:00Z" if k == "X-Amz-Date" else v) for k, v in hdrs]
    r = h.send(server.endpoint, "GET", path, hdrs)
    assert (r.status, *r.error()) == (
        403, "IncompleteSignatureException",
        "Date must be in ISO-8601 'basic format'. Got '2024-01-01T00:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601")


# --- malformed Authorization ----------------------------------------------------------------


@pytest.mark.parametrize("auth,message", [
    ("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + "0" * 64,
     "Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256 ..."),
    ("AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
     "Authorization header requires the AWS4-HMAC-SHA256 algorithm"),
    ("AWS4-HMAC-SHA256 Credential=AKIAX/20240101/us-east-1/eks, SignedHeaders=host, Signature=" + "0" * 64,
     "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/aws4_request, "
     "got '20240101/us-east-1/eks'"),
], ids=["no-credential", "sigv2", "short-scope"])
def test_malformed_authorization(server, auth, message):
    r = h.send(server.endpoint, "GET", "/clusters", host(server) + [("X-Amz-Date", "20240101T000000Z"),
                                                                  ("Authorization", auth)])
    assert (r.status, *r.error()) == (403, "IncompleteSignatureException", message)


def test_duplicate_authorization_forged_first(server):
    path, hdrs = h.sign("GET", server.endpoint, "/clusters", key=server.access_key, secret=server.secret_key,
                        service="eks")
    good = next(v for k, v in hdrs if k == "Authorization")
    forged = good[:-8] + "00000000"
    rest = [x for x in hdrs if x[0] != "Authorization"]
    r = h.send(server.endpoint, "GET", path, rest + [("Authorization", forged), ("Authorization", good)])
    assert (r.status, *r.error()) == (403, "IncompleteSignatureException",
                                      "The request has more than one authorization header")


@pytest.mark.parametrize("name", ["X-Amz-Date", "X-Amz-Security-Token"])
def test_duplicate_date_or_token_header(server, name):
    path, hdrs = h.sign("GET", server.endpoint, "/clusters", key=server.access_key, secret=server.secret_key,
                        service="eks")
    r = h.send(server.endpoint, "GET", path, hdrs + [(name, "20240101T000000Z"), (name, "x")])
    assert (r.status, *r.error()) == (403, "IncompleteSignatureException",
                                      f"The request has more than one {name.lower()} header")


def test_duplicate_authorization_good_first(server):
    path, hdrs = h.sign("GET", server.endpoint, "/clusters", key=server.access_key, secret=server.secret_key,
                        service="eks")
    other = "AWS4-HMAC-SHA256 Credential=AKIAOTHER0000000000/20240101/us-east-1/eks/aws4_request, " \
            "SignedHeaders=host, Signature=" + "0" * 64
    r = h.send(server.endpoint, "GET", path, hdrs + [("Authorization", other)])
    assert (r.status, r.error()[0]) == (403, "IncompleteSignatureException")


# --- presigned URLs -------------------------------------------------------------------------

GCI = "/?Action=GetCallerIdentity&Version=2011-06-15"


def test_presigned_url_works(server):
    """The control: a fresh presigned URL is accepted (so the refusals below are the attacks')."""
    p = h.presign(server.endpoint, GCI, key=server.access_key, secret=server.secret_key, service="sts")
    assert h.send(server.endpoint, "GET", p, host(server)).status == 200


def test_presigned_url_expired(server):
    p = h.presign(server.endpoint, GCI, key=server.access_key, secret=server.secret_key, service="sts", expires=60,
                  when=h.amz_now(-300))
    r = h.send(server.endpoint, "GET", p, host(server))
    assert (r.status, *r.error()) == (403, "AccessDenied", "Request has expired")


def test_presigned_url_tampered(server):
    p = h.presign(server.endpoint, GCI, key=server.access_key, secret=server.secret_key, service="sts")
    r = h.send(server.endpoint, "GET", p.replace("X-Amz-Expires=60", "X-Amz-Expires=3600"), host(server))
    assert (r.status, *r.error()) == (403, "SignatureDoesNotMatch", SIG_MISMATCH)


def test_presigned_url_wrong_signature(server):
    p = h.presign(server.endpoint, GCI, key=server.access_key, secret=server.secret_key, service="sts")
    base, _, sig = p.rpartition("X-Amz-Signature=")
    r = h.send(server.endpoint, "GET", base + "X-Amz-Signature=" + sig[::-1], host(server))
    assert (r.status, *r.error()) == (403, "SignatureDoesNotMatch", SIG_MISMATCH)


def test_presigned_url_beyond_seven_days(server):
    p = h.presign(server.endpoint, GCI, key=server.access_key, secret=server.secret_key, service="sts",
                  expires=7 * 24 * 3600 + 1)
    r = h.send(server.endpoint, "GET", p, host(server))
    assert (r.status, *r.error()) == (403, "IncompleteSignature", "X-Amz-Expires must be between 1 and 604800 seconds")


# --- temporary credentials ------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_sessions(server):
    iam = server.client("iam")
    name = "sec-sigv4-" + uuid.uuid4().hex[:6]
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(h.ACCOUNT_TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=h.policy(h.allow("eks:ListClusters")))
    sts = server.client("sts")
    return [sts.assume_role(RoleArn=arn, RoleSessionName=f"s{i}")["Credentials"] for i in (1, 2)]


def test_session_token_tampered(server, two_sessions):
    c = two_sessions[0]
    tok = c["SessionToken"]
    tampered = tok[:10] + ("A" if tok[10] != "A" else "B") + tok[11:]
    r = h.signed_call(server, "GET", "/clusters", key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=tampered)
    assert (r.status, *r.error()) == (403, "UnrecognizedClientException", INVALID_TOKEN)


def test_session_token_of_another_session(server, two_sessions):
    a, b = two_sessions
    r = h.signed_call(server, "GET", "/clusters", key=a["AccessKeyId"], secret=a["SecretAccessKey"],
                      token=b["SessionToken"])
    assert (r.status, *r.error()) == (403, "UnrecognizedClientException", INVALID_TOKEN)


def test_temporary_key_without_its_session_token(server, two_sessions):
    c = two_sessions[0]
    r = h.iam_call(server, "ListUsers", key=c["AccessKeyId"], secret=c["SecretAccessKey"])
    assert (r.status, *r.error()) == (403, "InvalidClientTokenId", INVALID_TOKEN)


def test_session_control_works(server, two_sessions):
    c = two_sessions[0]
    r = h.signed_call(server, "GET", "/clusters", key=c["AccessKeyId"], secret=c["SecretAccessKey"],
                      token=c["SessionToken"])
    assert r.status == 200, r


# --- bodies and operations ------------------------------------------------------------------


@pytest.mark.parametrize("api", ["iam", "cloudtrail", "eks"])
def test_oversized_body(server, api):
    big = b"a" * (1024 * 1024 + 1)
    if api == "iam":
        r = h.signed_call(server, "POST", "/", b"Action=ListUsers&Version=2010-05-08&x=" + big, [h.FORM], service="iam")
    elif api == "cloudtrail":
        r = h.signed_call(server, "POST", "/", b'{"x":"' + big + b'"}', CT, service="cloudtrail")
    else:
        r = h.signed_call(server, "POST", "/clusters/sec/pod-identity-associations", b'{"x":"' + big + b'"}', [h.JSON])
    assert (r.status, *r.error()) == (413, "RequestEntityTooLargeException", "Request body must be at most 1048576 bytes")


def test_malformed_json_eks(server):
    r = h.signed_call(server, "POST", "/clusters/sec/pod-identity-associations", b"{not json", [h.JSON])
    assert (r.status, *r.error()) == (400, "InvalidParameterException",
                                      "The request body is not valid JSON: key must be a string at line 1 column 2")


def test_malformed_json_cloudtrail(server):
    r = h.signed_call(server, "POST", "/", b"{not json", CT, service="cloudtrail")
    assert (r.status, *r.error()) == (400, "SerializationException",
                                      "The request body is not valid JSON: key must be a string at line 1 column 2")


def test_query_without_action(server):
    r = h.query_call(server, "iam", {"Version": "2010-05-08", "UserName": "x"})
    assert (r.status, *r.error()) == (400, "MissingAction", "Missing Action")


@pytest.mark.parametrize("service,version", [("iam", "2010-05-08"), ("sts", "2011-06-15")])
def test_unknown_query_action(server, service, version):
    r = h.query_call(server, service, {"Action": "EscalatePrivileges", "Version": version})
    assert (r.status, *r.error()) == (400, "InvalidAction",
                                      f"Could not find operation EscalatePrivileges for version {version}")


def test_unknown_cloudtrail_operation(server):
    target = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.DeleteTrail"
    r = h.signed_call(server, "POST", "/", b"{}", [CT[0], ("X-Amz-Target", target)], service="cloudtrail")
    assert (r.status, *r.error()) == (400, "UnknownOperationException", f"podid does not implement {target}")


def test_unknown_eks_route(server):
    r = h.signed_call(server, "GET", "/clusters/sec/x/y")
    assert (r.status, *r.error()) == (404, "UnknownOperationException", "podid does not implement GET /clusters/sec/x/y")


def test_unknown_method_on_a_known_route(server):
    r = h.signed_call(server, "DELETE", "/clusters/sec")
    assert r.status == 404, r
    assert r.error() == ("UnknownOperationException", "podid does not implement DELETE /clusters/sec")


def test_boto3_unknown_key_raises_the_modeled_error(server):
    eks = server.client("eks", access_key="AKIA" + "Z" * 16, secret_key="x" * 40)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        eks.list_clusters()
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "UnrecognizedClientException", 403)
