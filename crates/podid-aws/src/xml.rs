//! A minimal, allocation-light XML writer for query-protocol responses.
//!
//! Written by hand because the responses are small, flat and write-only: a streaming writer with
//! correct escaping is ~50 lines, where a general XML crate would add parsing we never use.

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

    /// `<name>text</name>` when `text` is present.
    pub fn leaf_opt(&mut self, name: &str, text: Option<&str>) {
        if let Some(text) = text {
            self.leaf(name, text);
        }
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
mod tests {
    use super::*;

    #[test]
    fn escapes_text() {
        let mut w = XmlWriter::new();
        w.open_ns("R", "urn:x");
        w.leaf("A", "<\"'&>");
        w.close("R");
        assert_eq!(
            w.finish(),
            "<R xmlns=\"urn:x\"><A>&lt;&quot;&apos;&amp;&gt;</A></R>"
        );
    }
}
