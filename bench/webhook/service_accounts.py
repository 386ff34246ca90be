"""Memory of the webhook's watched service-account copy: a real kube-apiserver (compat/k8s harness),
`podid webhook` (release build) watching it, N service accounts created in batches of 1,000 (each with
a kept annotation, a dropped 300-byte annotation and a label); prints VmRSS before and after.

    cargo build --release --bin podid && compat/python/.venv/bin/python bench/webhook/service_accounts.py [N]
"""
import json, os, re, subprocess, sys, time, urllib.request
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(ROOT, "compat/k8s"))
from kube import KubeApiServer, free_port, openssl
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
d = os.path.join(os.environ.get("TMPDIR", "/tmp"), "podid-sa-bench"); subprocess.run(["rm", "-rf", d]); os.makedirs(d)
kube = KubeApiServer(d).start()
openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "w.key", "-out", "w.crt", "-days", "1", "-subj", "/CN=x", cwd=d)
open(f"{d}/creds", "w").write("[default]\naws_access_key_id = A\naws_secret_access_key = S\n")
mport = free_port()
wh = subprocess.Popen([os.environ.get("PODID_BIN", os.path.join(ROOT, "target/release/podid")), "webhook", "--cluster-name", "c", "--endpoint", "http://127.0.0.1:9",
    "--tls-cert-file", f"{d}/w.crt", "--tls-key-file", f"{d}/w.key", "--listen", f"127.0.0.1:{free_port()}",
    "--metrics-listen", f"127.0.0.1:{mport}", "--kubeconfig", kube.kubeconfig, "--credentials-file", f"{d}/creds",
    "--log-format", "json"], stdout=open(f"{d}/wh.log", "w"), stderr=subprocess.STDOUT)
def metric(name):
    t = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics").read().decode()
    m = re.search(rf"^podid_webhook_{name} (\d+)", t, re.M); return int(m.group(1)) if m else -1
def rss():
    return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{wh.pid}/status").read()).group(1))
time.sleep(3)
base = metric("service_accounts"); r0 = rss()
for start in range(0, N, 1000):
    items = [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": f"sa-{i:06d}", "namespace": "default",
        "annotations": {"eks.amazonaws.com/token-expiration": "3600",
                        "kubectl.kubernetes.io/last-applied-configuration": "x" * 300},
        "labels": {"app": f"app-{i}"}}} for i in range(start, min(N, start + 1000))]
    kube.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
t0 = time.time()
while metric("service_accounts") < base + N: time.sleep(0.2)
time.sleep(2)
r1 = rss()
print(f"service accounts {base}->{metric('service_accounts')}; webhook VmRSS {r0} KiB -> {r1} KiB; {(r1-r0)*1024/N:.0f} B per service account")
wh.terminate(); wh.wait(); kube.stop()
