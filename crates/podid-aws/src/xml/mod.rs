//! The query protocol's XML: a minimal, allocation-light writer, a serde serializer over it
//! ([`write_members`]) that turns a typed response struct into elements, and the one envelope
//! every IAM and STS answer is wrapped in ([`query_response`]).
//!
//! Written by hand because the responses are small, flat and write-only: a streaming writer with
//! correct escaping is ~50 lines, where a general XML crate would add parsing we never use.

mod ser;

use serde::Serialize;

pub use ser::{XmlError, write_members};

/// `<{action}Response xmlns="{xmlns}"><{action}Result>…</{action}Result><ResponseMetadata>
/// <RequestId>…</RequestId></ResponseMetadata></{action}Response>`, the result's members written
/// by [`write_members`]: the shape botocore's query parser unwraps (`resultWrapper`).
pub fn query_response<T: Serialize + ?Sized>(
    action: &str,
    xmlns: &str,
    request_id: &str,
    result: &T,
) -> Result<String, XmlError> {
    let response_tag = format!("{action}Response");
    let result_tag = format!("{action}Result");
    let mut w = XmlWriter::new();
    w.open_ns(&response_tag, xmlns);
    w.open(&result_tag);
    write_members(&mut w, result)?;
    w.close(&result_tag);
    write_members(
        &mut w,
        &Metadata {
            response_metadata: ResponseMetadata { request_id },
        },
    )?;
    w.close(&response_tag);
    Ok(w.finish())
}

/// What follows every result.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata<'a> {
    response_metadata: ResponseMetadata<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ResponseMetadata<'a> {
    request_id: &'a str,
}

/// Builds an XML document; every text and attribute value is escaped.
#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    pub fn new() -> Self {
        Self {
            out: String::with_capacity(512),
        }
    }

    /// Opens the root element with its namespace.
    pub fn open_ns(&mut self, name: &str, xmlns: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        escape_into(&mut self.out, xmlns);
        self.out.push_str("\">");
    }

    pub fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// `<name>text</name>`.
    pub fn leaf(&mut self, name: &str, text: &str) {
        self.open(name);
        escape_into(&mut self.out, text);
        self.close(name);
    }

    /// `<name>value</name>` for a value whose text needs no escaping (a number).
    fn leaf_display(&mut self, name: &str, value: impl std::fmt::Display) {
        use std::fmt::Write as _;
        self.open(name);
        // Writing into a `String` cannot fail.
        let _ = write!(self.out, "{value}");
        self.close(name);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Escapes the five XML special characters.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests;
