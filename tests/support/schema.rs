//! scansentry's JSON Schema (packaging/schema/scansentry.schema.json, shipped as
//! /usr/share/scansentry/scansentry.schema.json): every `sentryctl … --json` output the tests
//! see, and every JSON log line they read, is checked against it; a key the schema does not
//! list fails the test.

use std::sync::OnceLock;

/// The shipped schema file.
pub const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/schema/scansentry.schema.json"
);

fn compiled() -> &'static (boon::Schemas, boon::SchemaIndex) {
    static SCHEMA: OnceLock<(boon::Schemas, boon::SchemaIndex)> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schemas = boon::Schemas::new();
        let index = boon::Compiler::new()
            .compile(FILE, &mut schemas)
            .expect("the shipped JSON Schema compiles");
        (schemas, index)
    })
}

/// Panics, saying where, unless `value` is valid under the shipped schema.
pub fn check(value: &serde_json::Value) {
    let (schemas, index) = compiled();
    if let Err(e) = schemas.validate(value, *index) {
        panic!("not valid under {FILE}: {e:#}\n{value:#}");
    }
}

/// Checks every JSON value in `text`: one document (pretty-printed), or one a line (a log, or
/// `top` frames). Text that is not JSON is left alone (a human output).
pub fn check_text(text: &str) {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        check(&v);
        return;
    }
    for line in text.lines().filter(|l| l.starts_with('{')) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            check(&v);
        }
    }
}
