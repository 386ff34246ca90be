#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from the repository's own fixtures.

Run from anywhere: `python3 fuzz/make-seeds.py` (needs the `cryptography` package to sign the
ES256 token seeds with keys/p256-sec1.der). Sources: the webhook's golden reviews
(crates/podid-webhook/tests/golden), the policy documents in podid-iam's tests, the IAM/STS
parameters of podid-server's golden test, and hand-written requests of each shape. Seeds are
named `seed-<source>`; crash inputs kept as regressions are named `crash-<what>`.
"""
import base64
import json
import pathlib
import re
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
NOW = 1_800_000_000
ISSUER = "https://oidc.example.test/id/CLUSTER1"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / f"seed-{name}").write_bytes(data)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def claims(**over):
    c = {
        "aud": ["pods.eks.amazonaws.com"],
        "exp": NOW + 3600,
        "iat": NOW - 10,
        "iss": ISSUER,
        "jti": "4a5e1f0c-7a39-4a43-9f3e-2b9a8a0f2c11",
        "kubernetes.io": {
            "namespace": "default",
            "node": {"name": "node-a", "uid": "6a2e1f0c-0000-4000-8000-000000000001"},
            "pod": {"name": "app-1", "uid": "7b3f2a1d-0000-4000-8000-000000000002"},
            "serviceaccount": {"name": "app", "uid": "8c4a3b2e-0000-4000-8000-000000000003"},
        },
        "nbf": NOW - 10,
        "sub": "system:serviceaccount:default:app",
    }
    c.update(over)
    return c


def tokens():
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    key = serialization.load_der_private_key((ROOT / "fuzz/keys/p256-sec1.der").read_bytes(), None)
    nums = key.public_key().public_numbers()
    jwks = {"keys": [{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "fuzz-ec",
                      "x": b64u(nums.x.to_bytes(32, "big")), "y": b64u(nums.y.to_bytes(32, "big"))}]}

    def sign(header, body):
        inp = f"{b64u(json.dumps(header).encode())}.{b64u(json.dumps(body).encode())}"
        r, s = decode_dss_signature(key.sign(inp.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{inp}.{b64u(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    header = {"alg": "ES256", "kid": "fuzz-ec", "typ": "JWT"}
    valid = sign(header, claims())
    return jwks, header, valid, sign


def main():
    jwks, header, valid, sign = tokens()
    # token: mode 0 = raw JWS, mode 1 = header JSON \n claims JSON (signed by the target).
    write("token", "valid-es256", b"\x00" + valid.encode())
    write("token", "expired", b"\x00" + sign(header, claims(exp=NOW - 7200)).encode())
    write("token", "rs256-unknown-kid", b"\x00" + sign({"alg": "RS256", "kid": "other"}, claims()).encode())
    write("token", "three-dots", b"\x00a.b.c")
    no_pod = claims()
    del no_pod["kubernetes.io"]["pod"]
    for name, c in [("claims", claims()), ("no-pod", no_pod),
                    ("aud-string", claims(aud="pods.eks.amazonaws.com")),
                    ("wrong-sub", claims(sub="system:serviceaccount:default:other")),
                    ("floats", claims(exp=1.8e9, nbf=None))]:
        write("token", f"signed-{name}", b"\x01" + json.dumps(header).encode() + b"\n" + json.dumps(c).encode())
    write("token", "signed-crit", b"\x01" + json.dumps({"alg": "ES256", "kid": "fuzz-ec", "crit": ["exp"]}).encode()
          + b"\n" + json.dumps(claims()).encode())

    # jwks
    write("jwks", "fixture", json.dumps(jwks))
    write("jwks", "mixed", json.dumps({"keys": [
        {"kty": "RSA", "kid": "r1", "use": "sig", "alg": "RS256", "e": "AQAB", "n": b64u(b"\xc3" * 256)},
        {"kty": "EC", "crv": "P-384", "kid": "p384", "x": b64u(b"\x01" * 48), "y": b64u(b"\x02" * 48)},
        {"kty": "oct", "kid": "hmac", "k": b64u(b"secret")},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64u(b"\x09" * 32)},
        jwks["keys"][0] | {"kid": None},
    ]}))
    write("jwks", "empty", '{"keys":[]}')

    # sigv4_header: target \n Authorization \n X-Amz-Date \n headers \n\n body
    auth = ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20270115/us-east-1/sts/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
            "Signature=" + "ab" * 32)
    write("sigv4_header", "sts", f"/\n{auth}\n20270115T080000Z\ncontent-type: application/x-www-form-urlencoded\n"
          "x-amz-security-token: IQoJb3JpZ2luX2VjEXAMPLE\nx-amz-content-sha256: UNSIGNED-PAYLOAD\n\n"
          "Action=GetCallerIdentity&Version=2011-06-15")
    write("sigv4_header", "eks-path", "/clusters/c1/pod-identity-associations?maxResults=5&nextToken=a%20b\n"
          + auth.replace("/sts/", "/eks/").replace("x-amz-security-token", "x-amz-content-sha256")
          + "\n20270115T080000Z\nx-amz-content-sha256: " + "0" * 64 + "\n\n{}")
    # sigv4_presigned: query \n headers
    q = urllib.parse.urlencode({
        "Action": "GetCallerIdentity", "Version": "2011-06-15",
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": "AKIAIOSFODNN7EXAMPLE/20270115/us-east-1/sts/aws4_request",
        "X-Amz-Date": "20270115T080000Z", "X-Amz-Expires": "60", "X-Amz-SignedHeaders": "host",
        "X-Amz-Security-Token": "IQoJb3JpZ2luX2VjEXAMPLE", "X-Amz-Signature": "cd" * 32})
    write("sigv4_presigned", "sts", q + "\nx-k8s-aws-id: c1")

    # iam_policy: the policy documents in podid-iam's tests.
    seen = set()
    for path in sorted((ROOT / "crates/podid-iam/tests").glob("*.rs")):
        for m in re.finditer(r'r#"(\s*\{.*?)"#', path.read_text(), re.S):
            doc = m.group(1).strip()
            if "Statement" in doc and doc not in seen and "{}" not in doc:
                seen.add(doc)
                write("iam_policy", f"{path.stem}-{len(seen):03}", doc)

    # query: query string \n body (IAM and STS actions as podid's golden test sends them).
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]})
    forms = {
        "create-role": [("Action", "CreateRole"), ("RoleName", "app"), ("Path", "/team/"),
                        ("AssumeRolePolicyDocument", trust), ("Description", "Fish & \"chips\""),
                        ("MaxSessionDuration", "7200"), ("Tags.member.1.Key", "env"),
                        ("Tags.member.1.Value", "dev"), ("Tags.member.2.Key", "note"),
                        ("Tags.member.2.Value", "a<b>&\"c\"'d")],
        "list-roles": [("Action", "ListRoles"), ("MaxItems", "1"), ("Marker", "plain")],
        "assume-role": [("Action", "AssumeRole"), ("Version", "2011-06-15"),
                        ("RoleArn", "arn:aws:iam::111122223333:role/app"), ("RoleSessionName", "s"),
                        ("Tags.member.1.Key", "k"), ("Tags.member.1.Value", "v"),
                        ("TransitiveTagKeys.member.1", "k"),
                        ("PolicyArns.member.1.arn", "arn:aws:iam::aws:policy/ReadOnlyAccess")],
    }
    for name, params in forms.items():
        write("query", name, "\n" + urllib.parse.urlencode(params))
    write("query", "in-query", "Action=GetCallerIdentity&Version=2011-06-15\n")

    # rest_json: query string \n body (EKS CreatePodIdentityAssociation, list paging).
    body = {"namespace": "default", "serviceAccount": "app",
            "roleArn": "arn:aws:iam::111122223333:role/app",
            "clientRequestToken": "2b3c4d5e-0000-4000-8000-000000000001",
            "tags": {"team": "a"}, "disableSessionTags": False,
            "targetRoleArn": "arn:aws:iam::444455556666:role/target"}
    write("rest_json", "create", "\n" + json.dumps(body))
    write("rest_json", "create-policy", "maxResults=5&nextToken=cG9kaWQxOmFiYw\n" + json.dumps(
        body | {"disableSessionTags": True, "policy": trust}))

    # json11: CloudTrail LookupEvents.
    write("json11", "lookup", json.dumps({
        "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "AssumeRole"}],
        "StartTime": 1.7e9, "EndTime": 1800000000, "MaxResults": 10, "NextToken": "abc"}))
    write("json11", "empty", "")

    # admission: the webhook's golden reviews.
    for path in sorted((ROOT / "crates/podid-webhook/tests/golden").glob("*.json")):
        case = json.loads(path.read_text())
        if "review" in case:
            write("admission", path.stem, json.dumps(case["review"]))

    # agent_request: target \n headers.
    write("agent_request", "valid", f"/v1/credentials\nhost: 127.0.0.1:2703\nauthorization: {valid}")
    write("agent_request", "absolute", f"http://169.254.170.23/v1/credentials\nauthorization: {valid}")
    write("agent_request", "two-hosts", "/v1/credentials\nhost: 127.0.0.1\nhost: [fd00:ec2::23]:80\nauthorization: x")


if __name__ == "__main__":
    main()
