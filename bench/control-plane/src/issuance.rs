//! Issue 3: credential issuances per second on the full EKS Auth path, beside the raw RS256
//! verification rate of the same key over the same tokens.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use podid_token::{
    ClusterKeys, DevSigner, KeySource, KeysConfig, MintRequest, Verifier, VerifierConfig,
};
use serde_json::{Value, json};

use crate::BenchError;
use crate::client::Client;
use crate::{cpu, drive};

#[derive(Debug)]
pub struct Params {
    pub cluster: String,
    pub service_accounts: usize,
    pub tokens: usize,
    pub concurrency: usize,
    pub threads: usize,
    /// Also measure the one-thread verify rates on this CPU (the server's), before the run.
    pub verify_cpu: Option<usize>,
    /// Sign every measured request before the clock starts, so the client's own SigV4 work
    /// cannot limit the rate (the server verifies each signature all the same).
    pub presign: bool,
}

/// The trust policy EKS documents for Pod Identity roles.
pub fn pod_trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                       "Action": ["sts:AssumeRole", "sts:TagSession"]}]
    })
}

pub async fn run(admin: &Client, p: &Params) -> Result<(), BenchError> {
    let signer = Arc::new(DevSigner::generate().map_err(BenchError::of)?);
    let issuer = format!("https://oidc.bench.example/{}", p.cluster);
    let jwks: Value = serde_json::from_str(signer.jwks()).map_err(BenchError::of)?;
    admin.register_cluster(&p.cluster, &issuer, jwks).await?;
    admin
        .create_role("bench-pod-role", &pod_trust_policy())
        .await?;
    let role_arn = "arn:aws:iam::000000000000:role/bench-pod-role";
    let path = format!("/clusters/{}/pod-identity-associations", p.cluster);
    let setup_client = admin.clone();
    let setup = drive::run(p.service_accounts, p.concurrency, move |i| {
        let c = setup_client.clone();
        let path = path.clone();
        let body = json!({ "namespace": "bench", "serviceAccount": format!("sa-{i}"), "roleArn": role_arn });
        async move {
            let payload = serde_json::to_vec(&body).unwrap_or_default();
            c.send("POST", &path, "eks", "application/json", payload)
                .await
        }
    })
    .await;
    if setup.ok() != p.service_accounts {
        return Err(BenchError::new(setup.summary("association setup")));
    }
    let node_policy = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "eks-auth:AssumeRoleForPodIdentity", "Resource": "*"}]
    });
    let (id, secret) = admin
        .create_user_with_key(&format!("bench-node-{}", p.cluster), &node_policy)
        .await?;
    let node = admin.with_identity(&id, &secret);

    let started = Instant::now();
    let tokens = Arc::new(mint_all(&signer, &issuer, p)?);
    println!(
        "minted {} tokens for {} service accounts (distinct pod uids) in {:.1} s on {} threads",
        tokens.len(),
        p.service_accounts,
        started.elapsed().as_secs_f64(),
        p.threads
    );

    verification_rates(&signer, &issuer, &tokens, p.threads, None)?;
    if let Some(cpu) = p.verify_cpu {
        // The server is idle now; its core measures the verify rate it would have alone.
        let (signer, issuer, tokens) = (Arc::clone(&signer), issuer.clone(), Arc::clone(&tokens));
        std::thread::spawn(move || verification_rates(&signer, &issuer, &tokens, 1, Some(cpu)))
            .join()
            .map_err(|_| BenchError::new("the verify thread died"))??;
    }

    let path = Arc::new(format!(
        "/clusters/{}/assume-role-for-pod-identity",
        p.cluster
    ));
    let probe = issue(&node, &path, tokens.first().map_or("", String::as_str)).await?;
    let v: Value = serde_json::from_slice(&probe.body).map_err(BenchError::of)?;
    if probe.status != 200 || v.pointer("/credentials/accessKeyId").is_none() {
        return Err(BenchError::new(format!(
            "probe issuance failed: HTTP {}: {v}",
            probe.status
        )));
    }
    let warm = drive::run(500.min(tokens.len()), p.concurrency, {
        let (node, path, tokens) = (node.clone(), Arc::clone(&path), Arc::clone(&tokens));
        move |i| {
            let (node, path, tokens) = (node.clone(), Arc::clone(&path), Arc::clone(&tokens));
            async move {
                let t = tokens.get(tokens.len() - 1 - i).map_or("", String::as_str);
                issue(&node, &path, t).await
            }
        }
    })
    .await;
    println!("{}", warm.summary("warm-up (last 500 tokens, not counted)"));
    let signed = if p.presign {
        let started = Instant::now();
        let all = tokens
            .iter()
            .map(|t| {
                let body = serde_json::to_vec(&json!({ "token": t })).map_err(BenchError::of)?;
                let req = node.sign("POST", &path, "eks-auth", "application/json", body)?;
                Ok(Mutex::new(Some(req)))
            })
            .collect::<Result<Vec<_>, BenchError>>()?;
        println!(
            "signed {} requests in {:.1} s (sent within SigV4's 15-minute window)",
            all.len(),
            started.elapsed().as_secs_f64()
        );
        Some(Arc::new(all))
    } else {
        None
    };
    let client_cpu = cpu::process_cpu();
    println!("measured run starts");
    let out = drive::run(tokens.len(), p.concurrency, move |i| {
        let (node, path, tokens) = (node.clone(), Arc::clone(&path), Arc::clone(&tokens));
        let req = signed
            .as_ref()
            .and_then(|all| all.get(i)?.lock().ok()?.take());
        async move {
            match req {
                Some(req) => node.send_signed(req, Instant::now()).await,
                None => {
                    let t = tokens.get(i).map_or("", String::as_str);
                    issue(&node, &path, t).await
                }
            }
        }
    })
    .await;
    let client_cpu = cpu::process_cpu().saturating_sub(client_cpu);
    println!(
        "{}",
        out.summary(&format!(
            "issuance (EKS Auth AssumeRoleForPodIdentity, {} in flight{})",
            p.concurrency,
            if p.presign { ", presigned" } else { "" }
        ))
    );
    println!(
        "load generator CPU during the run: {:.2} s ({:.0} % of the run's wall time)",
        client_cpu.as_secs_f64(),
        100.0 * client_cpu.as_secs_f64() / out.elapsed.as_secs_f64()
    );
    Ok(())
}

async fn issue(node: &Client, path: &str, token: &str) -> Result<crate::client::Reply, BenchError> {
    let body = serde_json::to_vec(&json!({ "token": token })).map_err(BenchError::of)?;
    node.send("POST", path, "eks-auth", "application/json", body)
        .await
}

/// `p.tokens` tokens spread over `p.service_accounts` accounts, each with its own pod uid.
fn mint_all(signer: &DevSigner, issuer: &str, p: &Params) -> Result<Vec<String>, BenchError> {
    let now = now_unix();
    let chunk = p.tokens.div_ceil(p.threads.max(1)).max(1);
    let indices: Vec<usize> = (0..p.tokens).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = indices
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|&i| {
                            let sa = i % p.service_accounts.max(1);
                            let req = MintRequest::new(issuer, "bench", format!("sa-{sa}"), now)
                                .with_pod(
                                    format!("pod-{sa}-{}", i / p.service_accounts.max(1)),
                                    Some(uuid::Uuid::new_v4().to_string()),
                                );
                            signer.mint(&req).map_err(BenchError::of)
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(p.tokens);
        for h in handles {
            all.extend(
                h.join()
                    .map_err(|_| BenchError::new("a mint thread died"))??,
            );
        }
        Ok(all)
    })
}

/// Prints the raw aws-lc-rs RS256 verify rate and `Verifier::verify_cached`'s rate over
/// `tokens`, on one thread and on `threads`, per wall second and per CPU-second of the verifying
/// threads. With `pin`, the calling thread first moves to that CPU (and `threads` must be 1).
fn verification_rates(
    signer: &DevSigner,
    issuer: &str,
    tokens: &[String],
    threads: usize,
    pin: Option<usize>,
) -> Result<(), BenchError> {
    let on = match pin {
        Some(cpu) => {
            cpu::pin_current_thread(cpu).map_err(BenchError::new)?;
            format!(" on CPU {cpu}")
        }
        None => String::new(),
    };
    let key = parsed_key(signer.jwks())?;
    let split: Vec<(&[u8], Vec<u8>)> = tokens
        .iter()
        .filter_map(|t| {
            let (input, sig) = t.rsplit_once('.')?;
            Some((input.as_bytes(), B64URL.decode(sig).ok()?))
        })
        .collect();
    let raw = |part: &[(&[u8], Vec<u8>)]| {
        part.iter()
            .filter(|(m, s)| key.verify_sig(m, s).is_ok())
            .count()
    };
    let keys = ClusterKeys::new(
        KeySource::Inline(signer.jwks().to_owned()),
        KeysConfig::default(),
    )
    .map_err(BenchError::of)?;
    let verifier = Verifier::new(VerifierConfig::new(issuer), Arc::new(keys));
    let now = now_unix();
    let full = |part: &[String]| {
        part.iter()
            .filter(|t| verifier.verify_cached(t, now).is_ok())
            .count()
    };
    let mut counts = vec![1];
    if threads > 1 && pin.is_none() {
        counts.push(threads);
    }
    for n in counts {
        let r = median_rate(ROUNDS, || parallel(&split, n, raw));
        println!(
            "raw aws-lc-rs RS256 verify (RSA-2048, ParsedPublicKey::verify_sig), {n} thread(s){on}: {:.0}/s, {:.0}/CPU-s ({} ok, median of {ROUNDS} passes)",
            r.per_wall_s, r.per_cpu_s, r.ok
        );
        let r = median_rate(ROUNDS, || parallel(tokens, n, full));
        println!(
            "podid_token::Verifier::verify_cached (split, header, RS256, claims), {n} thread(s){on}: {:.0}/s, {:.0}/CPU-s ({} ok, median of {ROUNDS} passes)",
            r.per_wall_s, r.per_cpu_s, r.ok
        );
    }
    Ok(())
}

/// Passes over the tokens per verification measurement; the median pass is reported.
const ROUNDS: usize = 3;

/// A median rate: per wall second and per CPU-second of the threads doing the work.
struct Rate {
    per_wall_s: f64,
    per_cpu_s: f64,
    ok: usize,
}

/// The median (by wall rate) of `rounds` runs of `f`, and the items verified per run.
fn median_rate(rounds: usize, mut f: impl FnMut() -> Pass) -> Rate {
    let mut rates = Vec::new();
    for _ in 0..rounds {
        let pass = f();
        let n = pass.ok as f64;
        rates.push(Rate {
            per_wall_s: n / pass.wall.as_secs_f64(),
            per_cpu_s: n / pass.cpu.as_secs_f64().max(1e-9),
            ok: pass.ok,
        });
    }
    rates.sort_by(|a, b| a.per_wall_s.total_cmp(&b.per_wall_s));
    let mid = rates.len() / 2;
    rates.into_iter().nth(mid).unwrap_or(Rate {
        per_wall_s: 0.0,
        per_cpu_s: 0.0,
        ok: 0,
    })
}

/// One pass: wall time, CPU time summed over the working threads, items verified.
struct Pass {
    wall: Duration,
    cpu: Duration,
    ok: usize,
}

fn parallel<T: Sync>(items: &[T], threads: usize, f: impl Fn(&[T]) -> usize + Sync) -> Pass {
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    let started = Instant::now();
    let (ok, cpu) = if threads <= 1 {
        // On the calling thread, so a pinned caller measures its own CPU.
        let cpu = cpu::thread_cpu();
        (f(items), cpu::thread_cpu().saturating_sub(cpu))
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = items
                .chunks(chunk)
                .map(|c| {
                    s.spawn(|| {
                        let cpu = cpu::thread_cpu();
                        (f(c), cpu::thread_cpu().saturating_sub(cpu))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or((0, Duration::ZERO)))
                .fold((0, Duration::ZERO), |(n, d), (m, e)| (n + m, d + e))
        })
    };
    Pass {
        wall: started.elapsed(),
        cpu,
        ok,
    }
}

fn parsed_key(jwks: &str) -> Result<ParsedPublicKey, BenchError> {
    let v: Value = serde_json::from_str(jwks).map_err(BenchError::of)?;
    let part = |name: &str| {
        v.pointer(&format!("/keys/0/{name}"))
            .and_then(Value::as_str)
            .and_then(|s| B64URL.decode(s).ok())
            .ok_or_else(|| BenchError::new(format!("the JWKS has no {name}")))
    };
    let (n, e) = (part("n")?, part("e")?);
    RsaPublicKeyComponents { n: &n, e: &e }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .map_err(|_| BenchError::new("the JWKS key does not parse"))
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}
