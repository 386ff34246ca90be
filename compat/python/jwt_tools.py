"""Hand-rolled JWTs for attack tests: RS256 with a key the test owns, plus deliberately broken ones.

Uses the pure-Python `rsa` package that the aws CLI already depends on, so no extra install.
"""
import base64
import hashlib
import hmac
import json
import time
import uuid

import rsa

AUDIENCE = "pods.eks.amazonaws.com"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_b64u(n: int) -> str:
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Key:
    """An RSA signing key with its kid and public JWK."""

    def __init__(self, kid=None, bits=2048):
        self.public, self.private = rsa.newkeys(bits)
        self.kid = kid or uuid.uuid4().hex

    def jwk(self):
        return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                "n": int_b64u(self.public.n), "e": int_b64u(self.public.e)}

    def jwks(self):
        return {"keys": [self.jwk()]}

    def public_pem(self) -> bytes:
        return self.public.save_pkcs1()


def claims(issuer, namespace, service_account, pod="pod-1", pod_uid=None, node=None, ttl=3600,
           audience=(AUDIENCE,), now=None, **overrides):
    now = int(now if now is not None else time.time())
    c = {
        "iss": issuer, "sub": f"system:serviceaccount:{namespace}:{service_account}",
        "aud": list(audience), "iat": now, "nbf": now, "exp": now + ttl,
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": service_account, "uid": str(uuid.uuid4())},
            "pod": {"name": pod, "uid": pod_uid or str(uuid.uuid4())},
        },
    }
    if node:
        c["kubernetes.io"]["node"] = {"name": node, "uid": str(uuid.uuid4())}
    for k, v in overrides.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def encode(header: dict, payload: dict) -> str:
    return b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(payload).encode())


def sign_rs256(key: Key, payload: dict, kid=None, alg="RS256") -> str:
    signing_input = encode({"alg": alg, "kid": kid or key.kid, "typ": "JWT"}, payload)
    sig = rsa.sign(signing_input.encode(), key.private, "SHA-256")
    return signing_input + "." + b64u(sig)


def none_alg(payload: dict, kid="x") -> str:
    return encode({"alg": "none", "kid": kid}, payload) + "."


def hs256_with_public_key(key: Key, payload: dict) -> str:
    signing_input = encode({"alg": "HS256", "kid": key.kid}, payload)
    mac = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64u(mac)


def flip_signature(token: str) -> str:
    head, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{payload}.{b64u(bytes(raw))}"
