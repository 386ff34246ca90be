"""Upstream STS calls for a burst of pods in `sts` mode, per pod and with session sharing.

Starts moto's server (the upstream STS) and `podid dev --issuer sts` on loopback,
creates two associations of 5,000 pods' service accounts (one with the six session tags, one with
tags disabled and `podid.dev/session-sharing=true`), then sends every pod's EKS Auth request at
once (32 in flight), retrying `ThrottlingException` with backoff as the node agent does. Counts
the AssumeRole calls moto recorded and podid's own counters.

    compat/python/.venv/bin/python bench/sts/burst.py [PODS]

Tokens are signed here with the dev cluster's key (`cryptography`, pulled in by moto), so minting
5,000 of them takes a second rather than 5,000 `podid token` processes.
"""
import base64
import concurrent.futures
import json
import os
import sys
import tempfile
import time
import uuid

import botocore
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# Counts, not speed: the debug build (what scripts/test builds) is fine.
os.environ.setdefault("PODID_BIN", os.path.join(ROOT, "target", "debug", "podid"))
sys.path.insert(0, os.path.join(ROOT, "compat", "python"))
from test_sts_mode import MOTO_ACCOUNT, Dev, Moto  # noqa: E402

ISSUER = "https://podid.dev/clusters/dev"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signer(dev):
    key = serialization.load_pem_private_key(
        open(os.path.join(dev.data, "dev-cluster-signing-key.pem"), "rb").read(), None)
    jwks = json.loads(__import__("urllib.request").request.urlopen(
        dev.endpoint + "/podid/public/clusters/dev/jwks").read())
    kid = jwks["keys"][0]["kid"]

    def mint(sa, pod):
        now = int(time.time())
        claims = {"aud": ["pods.eks.amazonaws.com"], "exp": now + 3600, "iat": now, "iss": ISSUER,
                  "jti": str(uuid.uuid4()),
                  "kubernetes.io": {"namespace": "default",
                                    "pod": {"name": pod, "uid": str(uuid.uuid4())},
                                    "serviceaccount": {"name": sa, "uid": "8a7f8c4e-0000-4000-8000-000000000001"}},
                  "nbf": now, "sub": f"system:serviceaccount:default:{sa}"}
        head = b64u(json.dumps({"alg": "RS256", "kid": kid}).encode())
        body = b64u(json.dumps(claims).encode())
        sig = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{head}.{body}.{b64u(sig)}"
    return mint


def ask(dev, client, token):
    """One pod: EKS Auth until it answers, backing off on throttling and unavailability (moto
    on a loaded machine answers slower than the 3 s attempt timeout) like the node agent."""
    refused = {"ThrottlingException": 0, "ServiceUnavailableException": 0}
    for attempt in range(40):
        try:
            return client.assume_role_for_pod_identity(clusterName="dev", token=token), refused
        except botocore.exceptions.ClientError as e:
            code = e.response["Error"]["Code"]
            if code not in refused:
                raise
            refused[code] += 1
            time.sleep(min(0.05 * 2 ** attempt, 2.0))
    raise RuntimeError("still refused")


def run(dev, moto, sa, role, pods, mint):
    moto.reset()
    tokens = [mint(sa, f"{sa}-{i}") for i in range(pods)]
    client = dev.client("eks-auth")
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda t: ask(dev, client, t), tokens))
    elapsed = time.time() - started
    calls = len(moto.assume_role_calls(f"arn:aws:iam::{MOTO_ACCOUNT}:role/{role}"))
    keys = {r["credentials"]["accessKeyId"] for r, _ in results}
    return {"pods": pods, "upstream_assume_role_calls": calls, "distinct_credentials": len(keys),
            "throttled_answers": sum(r["ThrottlingException"] for _, r in results),
            "unavailable_answers": sum(r["ServiceUnavailableException"] for _, r in results),
            "seconds": round(elapsed, 1)}


def main():
    pods = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    tmp = tempfile.mkdtemp(prefix="podid-sts-burst-")
    moto = Moto(tmp)
    dev = Dev(tmp, moto)
    try:
        dev.associate("per-pod", "per-pod-role")
        dev.associate("shared", "shared-role", disableSessionTags=True,
                      tags={"podid.dev/session-sharing": "true"})
        mint = signer(dev)
        for sa, role in [("per-pod", "per-pod-role"), ("shared", "shared-role")]:
            print(json.dumps({"association": sa, **run(dev, moto, sa, role, pods, mint)}), flush=True)
        print(dev.metrics())
    finally:
        dev.stop()
        moto.stop()


if __name__ == "__main__":
    main()
