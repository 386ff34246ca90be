//! Signing the requests podid itself sends (CLI → server, agent → EKS Auth).

use std::fmt;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;

use super::SigV4Error;

/// An access key pair, optionally temporary. `Debug` never prints the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for SigningCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Signs `request` in place (Authorization, X-Amz-Date and, for temporary credentials,
/// X-Amz-Security-Token headers). The request URI must be absolute (it names the host).
pub fn sign_request(
    request: &mut http::Request<Bytes>,
    credentials: &SigningCredentials,
    region: &str,
    service: &str,
    now: SystemTime,
) -> Result<(), SigV4Error> {
    let identity: Identity = Credentials::new(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        credentials.session_token.clone(),
        None,
        "podid",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SigV4Error::Incomplete(e.to_string()))?
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| SigV4Error::Incomplete(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| SigV4Error::Incomplete(e.to_string()))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}
