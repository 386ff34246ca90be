//! Reading rest-json request bodies member by member, so every refusal names its field.
//!
//! serde's derived errors say "invalid type: integer, expected a string at line 1 column 9"; AWS
//! says which member is wrong. Bodies are parsed to a `Value` once (after the size cap) and members
//! are taken with these accessors.

use std::collections::BTreeMap;

use podid_aws::AwsError;
use serde_json::{Map, Value};

/// A JSON object body.
#[derive(Debug)]
pub(crate) struct Body(Map<String, Value>);

/// Which AWS error code bad input answers with (EKS: InvalidParameterException; EKS Auth and
/// others: InvalidRequestException or their own).
pub(crate) type ErrorFn = fn(String) -> AwsError;

impl Body {
    /// Parses `bytes` as a JSON object; an empty body is an empty object (SDKs send nothing when
    /// every member is absent).
    pub(crate) fn parse(bytes: &[u8], err: ErrorFn) -> Result<Self, AwsError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(err("The request body must be a JSON object".into())),
            Err(e) => Err(err(format!("The request body is not valid JSON: {e}"))),
        }
    }

    pub(crate) fn opt_str(&self, field: &str, err: ErrorFn) -> Result<Option<&str>, AwsError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(err(format!("{field} must be a string"))),
        }
    }

    pub(crate) fn req_str(&self, field: &str, err: ErrorFn) -> Result<&str, AwsError> {
        self.opt_str(field, err)?
            .ok_or_else(|| err(format!("{field} is required and must not be null")))
    }

    pub(crate) fn opt_bool(&self, field: &str, err: ErrorFn) -> Result<Option<bool>, AwsError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(err(format!("{field} must be a boolean"))),
        }
    }

    pub(crate) fn opt_string_map(
        &self,
        field: &str,
        err: ErrorFn,
    ) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(err(format!("{field}.{k} must be a string"))),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(err(format!("{field} must be a map of strings"))),
        }
    }

    /// A member that may be a JSON string holding a document, or the document itself.
    pub(crate) fn opt_document(
        &self,
        field: &str,
        err: ErrorFn,
    ) -> Result<Option<String>, AwsError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v @ Value::Object(_)) => Ok(Some(v.to_string())),
            Some(_) => Err(err(format!("{field} must be a JSON document or a string"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(m: String) -> AwsError {
        AwsError::new("InvalidParameterException", 400, m)
    }

    #[test]
    fn names_the_field() {
        let b = Body::parse(br#"{"namespace": 5, "tags": {"a": 1}, "x": null}"#, e).unwrap();
        assert_eq!(
            b.opt_str("namespace", e).unwrap_err().message,
            "namespace must be a string"
        );
        assert_eq!(
            b.opt_string_map("tags", e).unwrap_err().message,
            "tags.a must be a string"
        );
        assert!(
            b.req_str("x", e)
                .unwrap_err()
                .message
                .starts_with("x is required")
        );
        assert!(Body::parse(b"[1]", e).is_err());
        assert!(Body::parse(b"{", e).is_err());
        assert!(
            Body::parse(b"", e)
                .unwrap()
                .opt_str("a", e)
                .unwrap()
                .is_none()
        );
    }
}
