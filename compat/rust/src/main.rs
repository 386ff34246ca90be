//! Calls STS GetCallerIdentity with the SDK's default configuration and credential chain — no
//! credentials, endpoint or region in code — and prints `ARN <arn>`. Run it under `podid exec`,
//! which points the container credential provider at the node agent and `AWS_ENDPOINT_URL_STS`
//! at podid.

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sts = aws_sdk_sts::Client::new(&config);
    match sts.get_caller_identity().send().await {
        Ok(out) => {
            println!("ARN {}", out.arn().unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "GetCallerIdentity failed: {}",
                aws_sdk_sts::error::DisplayErrorContext(&e)
            );
            ExitCode::FAILURE
        }
    }
}
