//! The comparison point for issue 3: STS AssumeRole against moto's server, with the six session
//! tags Pod Identity sets, driven by the same client and concurrency as the EKS Auth run.

use crate::BenchError;
use crate::client::{Client, form};
use crate::drive;

pub async fn run(client: &Client, count: usize, concurrency: usize) -> Result<(), BenchError> {
    let role_arn = "arn:aws:iam::123456789012:role/bench-pod-role";
    // moto answers AssumeRole for any role ARN; one probe makes sure it does.
    let probe = client
        .send(
            "POST",
            "/",
            "sts",
            CONTENT_TYPE,
            body(role_arn, 0).into_bytes(),
        )
        .await?;
    if probe.status != 200 || !String::from_utf8_lossy(&probe.body).contains("<AccessKeyId>") {
        return Err(BenchError::new(format!(
            "moto AssumeRole probe failed: HTTP {}: {}",
            probe.status,
            String::from_utf8_lossy(&probe.body)
        )));
    }
    let c = client.clone();
    let out = drive::run(count, concurrency, move |i| {
        let c = c.clone();
        async move {
            c.send(
                "POST",
                "/",
                "sts",
                CONTENT_TYPE,
                body(role_arn, i).into_bytes(),
            )
            .await
        }
    })
    .await;
    println!(
        "{}",
        out.summary(&format!(
            "moto STS AssumeRole with 6 session tags, {concurrency} in flight"
        ))
    );
    Ok(())
}

const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

fn body(role_arn: &str, i: usize) -> String {
    let session = format!("eks-bench-pod-{i}");
    let sa = format!("sa-{}", i % 1000);
    let pod = format!("pod-{i}");
    let uid = uuid::Uuid::new_v4().to_string();
    let tags = [
        (
            "eks-cluster-arn",
            "arn:aws:eks:us-east-1:123456789012:cluster/bench",
        ),
        ("eks-cluster-name", "bench"),
        ("kubernetes-namespace", "bench"),
        ("kubernetes-service-account", sa.as_str()),
        ("kubernetes-pod-name", pod.as_str()),
        ("kubernetes-pod-uid", uid.as_str()),
    ];
    let mut params: Vec<(String, String)> = vec![
        ("Action".into(), "AssumeRole".into()),
        ("Version".into(), "2011-06-15".into()),
        ("RoleArn".into(), role_arn.into()),
        ("RoleSessionName".into(), session),
        ("DurationSeconds".into(), "3600".into()),
    ];
    for (n, (k, v)) in tags.iter().enumerate() {
        params.push((format!("Tags.member.{}.Key", n + 1), (*k).to_owned()));
        params.push((format!("Tags.member.{}.Value", n + 1), (*v).to_owned()));
    }
    let refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form(&refs)
}
