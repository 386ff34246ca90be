//! Printing API answers: pretty JSON, or aligned tables for people.

use std::io::IsTerminal as _;

use serde_json::Value;

use crate::cli::OutputFormat;

/// The chosen format: the flag, else a table on a terminal and JSON in a pipe.
pub(crate) fn format(flag: Option<OutputFormat>) -> OutputFormat {
    flag.unwrap_or(if std::io::stdout().is_terminal() {
        OutputFormat::Table
    } else {
        OutputFormat::Json
    })
}

pub(crate) fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Columns of `fields` from each object in `items`, with a header row.
pub(crate) fn print_table(headers: &[&str], fields: &[&str], items: &[Value]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| fields.iter().map(|f| cell(item.get(*f))).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row);
    }
}

/// One object as `key  value` lines, in its own field order.
pub(crate) fn print_object(object: &Value) {
    let Some(map) = object.as_object() else {
        print_json(object);
        return;
    };
    let width = map.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in map {
        let shown = if k.ends_with("At") {
            time_cell(v)
        } else {
            cell(Some(v))
        };
        println!("{k:<width$}  {shown}");
    }
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// EKS timestamps are epoch seconds; show them as RFC 3339 UTC.
fn time_cell(v: &Value) -> String {
    let seconds = v
        .as_f64()
        .map(|f| f.floor())
        .and_then(|f| format!("{f:.0}").parse::<i64>().ok());
    seconds
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| cell(Some(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_as_rfc3339_and_junk_passes_through() {
        assert_eq!(
            time_cell(&serde_json::json!(1_700_000_000.5)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(time_cell(&serde_json::json!("soon")), "soon");
        assert_eq!(time_cell(&serde_json::json!(1e300)), "1e+300");
    }
}
