//! The layering rule, checked: every module imports only from the layers below it.
//!
//! Reads this crate's sources and fails on any `crate::<layer>` path (in a `use` or inline)
//! that points upward. Test modules are skipped: tests may reach across layers.

use std::path::Path;

/// The layers top-down, and the layers each may import from.
const ALLOWED: &[(&str, &[&str])] = &[
    ("edge", &["api", "protocol", "domain", "state"]),
    ("api", &["protocol", "domain", "state"]),
    ("protocol", &["domain"]),
    ("domain", &["state"]),
    ("state", &[]),
];

fn layer_of(relative: &Path) -> Option<&'static str> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    ALLOWED
        .iter()
        .map(|(layer, _)| *layer)
        .find(|layer| *layer == first)
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The non-test part of a source file: everything before its `#[cfg(test)]` module.
fn non_test(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |i| &text[..i])
}

/// The upward imports in `text`, a source file of `layer`.
fn upward_imports(layer: &str, text: &str) -> Vec<String> {
    let allowed = ALLOWED
        .iter()
        .find(|(l, _)| *l == layer)
        .map_or(&[][..], |(_, a)| *a);
    let mut found = Vec::new();
    for (line_no, line) in non_test(text).lines().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for (target, _) in ALLOWED {
            let upward = *target != layer && !allowed.contains(target);
            if upward && line.contains(&format!("crate::{target}::")) {
                found.push(format!(
                    "{}: {layer} imports {target}: {}",
                    line_no + 1,
                    line.trim()
                ));
            }
        }
    }
    found
}

#[test]
fn every_module_imports_only_downward() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap();
        let name = relative.to_string_lossy();
        if name.ends_with("tests.rs") || name.contains("/tests/") {
            continue;
        }
        let Some(layer) = layer_of(relative) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        violations.extend(
            upward_imports(layer, &text)
                .into_iter()
                .map(|v| format!("{name}:{v}")),
        );
    }
    assert!(files.len() > 40, "found only {} sources", files.len());
    assert!(
        violations.is_empty(),
        "upward imports:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_rule_sees_upward_imports_and_ignores_comments_and_tests() {
    let text = "use crate::state::Registry;\nuse crate::api::ApiState;\n// crate::edge::router\nfn f() { crate::protocol::query::x() }\n#[cfg(test)]\nmod tests { use crate::edge::x; }\n";
    let found = upward_imports("domain", text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("2: domain imports api"));
    assert!(found[1].starts_with("4: domain imports protocol"));
    assert!(upward_imports("edge", text).is_empty());
}
