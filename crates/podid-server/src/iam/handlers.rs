//! What every IAM handler shares: the request context, authorization, and the XML reply.

use axum::response::Response;
use podid_aws::AwsError;
use podid_aws::xml::XmlWriter;

use super::index::Iam;
use crate::auth::RequestInfo;
use crate::query::QueryRequest;
use crate::state::AppState;

/// IAM's XML namespace.
const XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// One IAM request being handled.
pub(super) struct Ctx<'a> {
    pub(super) iam: &'a Iam,
    pub(super) state: &'a AppState,
    pub(super) info: &'a RequestInfo,
    pub(super) q: &'a QueryRequest,
}

impl Ctx<'_> {
    pub(super) fn account(&self) -> &str {
        &self.state.config.account_id
    }

    /// Authorizes `iam:<action>` on `resource` for the caller.
    pub(super) fn authorize(&self, resource: &str) -> Result<(), AwsError> {
        let action = format!("iam:{}", self.q.action);
        crate::authz::authorize(self.state, self.info, &action, resource)
    }

    /// The `<{Action}Response>` envelope around `result`.
    pub(super) fn reply(&self, result: impl FnOnce(&mut XmlWriter)) -> Result<Response, AwsError> {
        Ok(crate::query::xml_response(
            &self.q.action,
            XMLNS,
            &self.info.request_id,
            result,
        ))
    }

    /// A reply with an empty result element (Delete…, Put…, Attach…).
    pub(super) fn empty(&self) -> Result<Response, AwsError> {
        self.reply(|_| {})
    }
}
