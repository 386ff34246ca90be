//! What every IAM handler shares: the request context, authorization, and the XML reply.

use crate::protocol::query::QueryError;
use axum::response::Response;
use serde::Serialize;

use crate::api::ApiState;
use crate::domain::authz;
use crate::domain::caller::RequestInfo;
use crate::domain::iam::Iam;
use crate::protocol::query::QueryRequest;

/// IAM's XML namespace.
const XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// One IAM request being handled.
pub(super) struct Ctx<'a> {
    pub(super) iam: &'a Iam,
    pub(super) state: &'a ApiState,
    pub(super) info: &'a RequestInfo,
    pub(super) q: &'a QueryRequest,
}

impl Ctx<'_> {
    pub(super) fn account(&self) -> &str {
        &self.state.config.account_id
    }

    /// Authorizes `iam:<action>` on `resource` for the caller.
    pub(super) fn authorize(&self, resource: &str) -> Result<(), QueryError> {
        let action = format!("iam:{}", self.q.action);
        Ok(authz::authorize(
            &self.state.iam,
            self.info,
            &action,
            resource,
        )?)
    }

    /// The `<{Action}Response>` envelope around `result`, one of [`super::wire`]'s shapes.
    pub(super) fn reply(&self, result: &impl Serialize) -> Result<Response, QueryError> {
        crate::protocol::query::xml_response(&self.q.action, XMLNS, &self.info.request_id, result)
            .map_err(|error| {
                tracing::error!(%error, action = %self.q.action, "response shape does not serialize");
                QueryError::ServiceFailure
            })
    }

    /// A reply with an empty result element (Delete…, Put…, Attach…: no output shape).
    pub(super) fn empty(&self) -> Result<Response, QueryError> {
        self.reply(&())
    }
}
