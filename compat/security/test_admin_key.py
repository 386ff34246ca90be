"""Finding 4: the administrator key. `podid admin rotate-key` retires the old key on every API at
once; a key planted on podid-admin is retired at the next start; `--admin-access-key-file` is
created (0600) when absent."""
import configparser
import os
import stat
import subprocess
import time
import urllib.request

import botocore.exceptions
import pytest

import helpers as h
from conftest import PODID_BIN, Server, clean_env, free_port
from helpers import INVALID_TOKEN


def read_key(path):
    cfg = configparser.ConfigParser()
    cfg.read(path)
    return cfg["default"]["aws_access_key_id"], cfg["default"]["aws_secret_access_key"]


@pytest.fixture(scope="module")
def rotated(tmp_path_factory):
    srv = Server(str(tmp_path_factory.mktemp("rotate"))).start()
    old = (srv.access_key, srv.secret_key)
    out = subprocess.run([PODID_BIN, "admin", "rotate-key", "--data-dir", srv.data_dir, "--endpoint", srv.endpoint],
                         env=clean_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    new = read_key(os.path.join(srv.data_dir, "admin-credentials"))
    yield srv, old, new, out.stdout + out.stderr
    srv.stop()


def test_rotation_reports_and_writes_a_new_key(rotated):
    srv, old, new, output = rotated
    assert new[0] != old[0] and new[0].startswith("AKIA")
    assert f"{old[0]} retired" in output and f"{new[0]} written to" in output
    assert stat.S_IMODE(os.stat(os.path.join(srv.data_dir, "admin-credentials")).st_mode) == 0o600
    keys = srv.client("iam", *new).list_access_keys(UserName="podid-admin")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [new[0]]


@pytest.mark.parametrize("api,expected", [
    ("iam", (403, "InvalidClientTokenId", INVALID_TOKEN)),
    ("sts", (403, "InvalidClientTokenId", INVALID_TOKEN)),
    ("eks", (403, "UnrecognizedClientException", INVALID_TOKEN)),
    ("admin", (403, "UnrecognizedClientException", INVALID_TOKEN)),
    ("cloudtrail", (400, "UnrecognizedClientException", INVALID_TOKEN)),
])
def test_old_key_refused_everywhere(rotated, api, expected):
    srv, old, new, _ = rotated
    key, secret = old
    if api == "iam":
        r = h.iam_call(srv, "ListUsers", key=key, secret=secret)
    elif api == "sts":
        r = h.query_call(srv, "sts", {"Action": "GetCallerIdentity", "Version": "2011-06-15"}, key=key, secret=secret)
    elif api == "eks":
        r = h.signed_call(srv, "GET", "/clusters", key=key, secret=secret)
    elif api == "admin":
        r = h.signed_call(srv, "GET", "/podid/v1/clusters", service="podid", key=key, secret=secret)
    else:
        r = h.signed_call(srv, "POST", "/", b"{}", [("Content-Type", "application/x-amz-json-1.1"), (
            "X-Amz-Target", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents")],
            service="cloudtrail", key=key, secret=secret)
    assert (r.status, *r.error()) == expected


def test_old_key_presigned_url_refused(rotated):
    srv, old, _, _ = rotated
    p = h.presign(srv.endpoint, "/?Action=GetCallerIdentity&Version=2011-06-15", key=old[0], secret=old[1],
                  service="sts")
    r = h.send(srv.endpoint, "GET", p, [("Host", srv.endpoint.split("//")[1])])
    assert (r.status, *r.error()) == (403, "InvalidClientTokenId", INVALID_TOKEN)


def test_old_key_cannot_create_a_new_key(rotated):
    srv, old, _, _ = rotated
    with pytest.raises(botocore.exceptions.ClientError) as e:
        srv.client("iam", *old).create_access_key(UserName="podid-admin")
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "InvalidClientTokenId", 403)


def test_planted_admin_key_is_retired_at_restart(fresh_server):
    """A second key an intruder adds to podid-admin is deleted when the server restarts."""
    planted = fresh_server.client("iam").create_access_key(UserName="podid-admin")["AccessKey"]
    key = (planted["AccessKeyId"], planted["SecretAccessKey"])
    assert fresh_server.client("sts", *key).get_caller_identity()["Arn"].endswith(":user/podid-admin")
    fresh_server.stop()
    fresh_server.start()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fresh_server.client("sts", *key).get_caller_identity()
    assert (e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]) == (
        "InvalidClientTokenId", INVALID_TOKEN)


def test_admin_key_file_created_when_absent(tmp_path):
    key_file = tmp_path / "elsewhere" / "admin.ini"
    key_file.parent.mkdir()
    port = free_port()
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([PODID_BIN, "server", "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "d"),
                             "--admin-access-key-file", str(key_file), "--log-format", "json"],
                            stdout=log, stderr=log, env=clean_env())
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        assert key_file.exists()
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        assert not os.path.exists(tmp_path / "d" / "admin-credentials")
        key, secret = read_key(str(key_file))
        srv = Server.__new__(Server)
        srv.endpoint = f"http://127.0.0.1:{port}"
        assert h.iam_call(srv, "ListUsers", key=key, secret=secret).status == 200
        logged = open(tmp_path / "server.log").read()
        assert secret not in logged
    finally:
        proc.terminate()
        proc.wait(timeout=20)
