//! The AWS error value and its wire encodings.
//!
//! Every refusal podid sends leaves through [`AwsError::into_response`], so the status, the
//! `x-amzn-ErrorType` header and the body shape always agree with what botocore's parsers expect:
//! * rest-json (EKS, EKS Auth): header `x-amzn-ErrorType: <Code>`, body `{"message": "..."}` plus
//!   any extra members the model's error shape declares (e.g. `clusterName`);
//! * json-1.1 (CloudTrail): body `{"__type": "<Code>", "message": "..."}`;
//! * query (IAM, STS): `<ErrorResponse><Error><Type>Sender</Type><Code>..</Code><Message>..`.

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};

use crate::xml::XmlWriter;

/// Which side of the conversation was at fault (query protocol `<Type>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Sender,
    Receiver,
}

/// The wire protocol an error is encoded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    RestJson,
    Json11,
    Query,
}

/// An AWS service error: code, HTTP status, message, and optional extra JSON members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub code: Cow<'static, str>,
    pub status: StatusCode,
    pub message: String,
    pub fault: Fault,
    /// Extra string members of the error shape (rest-json/json-1.1 only), e.g. `clusterName`.
    pub fields: Vec<(&'static str, String)>,
}

impl AwsError {
    /// A client-fault error.
    pub fn new(
        code: impl Into<Cow<'static, str>>,
        status: u16,
        message: impl Into<String>,
    ) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        let fault = if status.is_server_error() {
            Fault::Receiver
        } else {
            Fault::Sender
        };
        Self {
            code: code.into(),
            status,
            message: message.into(),
            fault,
            fields: Vec::new(),
        }
    }

    /// Adds an extra member to the JSON error body.
    pub fn with_field(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.fields.push((name, value.into()));
        self
    }

    /// A generic internal error whose detail stays in the server log.
    pub fn internal(code: &'static str) -> Self {
        Self::new(code, 500, "An internal error occurred. Try again later.")
    }

    /// Encode for `protocol`, with `request_id` in the `x-amzn-RequestId` header (and the XML body).
    pub fn into_response(self, protocol: Protocol, request_id: &str) -> Response<Bytes> {
        let (content_type, body) = match protocol {
            Protocol::RestJson => ("application/json", self.json_body(false)),
            Protocol::Json11 => ("application/x-amz-json-1.1", self.json_body(true)),
            Protocol::Query => ("text/xml", self.xml_body(request_id)),
        };
        let mut response = Response::new(Bytes::from(body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        if let Ok(v) = HeaderValue::from_str(request_id) {
            headers.insert("x-amzn-requestid", v);
        }
        if protocol == Protocol::RestJson
            && let Ok(v) = HeaderValue::from_str(&self.code)
        {
            headers.insert("x-amzn-errortype", v);
        }
        response
    }

    fn json_body(&self, with_type: bool) -> String {
        let mut body = serde_json::Map::new();
        if with_type {
            body.insert("__type".into(), self.code.as_ref().into());
        }
        body.insert("message".into(), self.message.clone().into());
        for (name, value) in &self.fields {
            body.insert((*name).into(), value.clone().into());
        }
        serde_json::Value::Object(body).to_string()
    }

    fn xml_body(&self, request_id: &str) -> String {
        let mut w = XmlWriter::new();
        w.open_ns("ErrorResponse", "https://iam.amazonaws.com/doc/2010-05-08/");
        w.open("Error");
        w.leaf(
            "Type",
            if self.fault == Fault::Sender {
                "Sender"
            } else {
                "Receiver"
            },
        );
        w.leaf("Code", &self.code);
        w.leaf("Message", &self.message);
        w.close("Error");
        w.leaf("RequestId", request_id);
        w.close("ErrorResponse");
        w.finish()
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code,
            self.status.as_u16(),
            self.message
        )
    }
}

impl std::error::Error for AwsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_json_error_carries_type_header_and_message() {
        let r = AwsError::new(
            "ResourceNotFoundException",
            404,
            "No cluster found for name: x.",
        )
        .with_field("clusterName", "x")
        .into_response(Protocol::RestJson, "req-1");
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["x-amzn-errortype"], "ResourceNotFoundException");
        assert_eq!(r.headers()["x-amzn-requestid"], "req-1");
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["message"], "No cluster found for name: x.");
        assert_eq!(v["clusterName"], "x");
    }

    #[test]
    fn json11_error_carries_type_in_body() {
        let r = AwsError::new("InvalidNextTokenException", 400, "bad")
            .into_response(Protocol::Json11, "r");
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["__type"], "InvalidNextTokenException");
        assert!(r.headers().get("x-amzn-errortype").is_none());
    }

    #[test]
    fn query_error_is_escaped_xml() {
        let r = AwsError::new(
            "NoSuchEntity",
            404,
            "The role with name <a&b> cannot be found.",
        )
        .into_response(Protocol::Query, "rid");
        let body = std::str::from_utf8(r.body()).unwrap();
        assert!(body.contains("<Code>NoSuchEntity</Code>"));
        assert!(body.contains("&lt;a&amp;b&gt;"));
        assert!(body.contains("<Type>Sender</Type>"));
        assert!(body.contains("<RequestId>rid</RequestId>"));
    }

    #[test]
    fn server_errors_are_receiver_faults() {
        assert_eq!(AwsError::internal("ServerException").fault, Fault::Receiver);
    }
}
