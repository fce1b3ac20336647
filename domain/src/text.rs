//! The check every text input shares, whatever carries it: no NUL character (U+0000).
//! PostgreSQL refuses NUL in `text` and `jsonb` (SQLite would store it and every export would
//! choke on it), so an input holding one is refused with `BAD_USER_INPUT` naming the field,
//! before anything reads or writes the database. The transports call this once for a whole
//! input (GraphQL arguments and variables, REST JSON bodies) or per item of a batch, so a bad
//! item fails alone; ingest checks each item again for the callers that build inputs in code
//! (connectors, inbound webhooks).

use serde_json::Value;

use crate::{Error, FieldError, Result};

/// What a field holding NUL is told.
pub const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// At most this many fields are named in one error.
const MAX_NAMED: usize = 20;

/// `prefix.name`, or `name` alone when there is no prefix. A name holding NUL is shown with
/// the character escaped.
pub fn join(prefix: &str, name: &str) -> String {
    let name = if name.contains('\0') {
        name.replace('\0', "\\u0000")
    } else {
        name.to_owned()
    };
    if prefix.is_empty() {
        name
    } else if name.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Whether a text holds NUL.
pub fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

/// One field error per string (or object key) of `v` that holds NUL, named by its path under
/// `prefix` (`metadata.tags.2`, `signals.3.actor.email`).
pub fn nul_fields(v: &Value, prefix: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    walk(v, prefix.to_owned(), &mut out);
    out
}

fn walk(v: &Value, path: String, out: &mut Vec<FieldError>) {
    if out.len() >= MAX_NAMED {
        return;
    }
    match v {
        Value::String(s) if has_nul(s) => out.push(FieldError::new(path, NUL_MESSAGE)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, join(&path, &i.to_string()), out);
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                let p = join(&path, k);
                if has_nul(k) && out.len() < MAX_NAMED {
                    out.push(FieldError::new(p.clone(), NUL_MESSAGE));
                }
                walk(item, p, out);
            }
        }
        _ => {}
    }
}

/// `Err(BAD_USER_INPUT)` naming every field of `v` that holds NUL.
pub fn refuse_nul(v: &Value, prefix: &str) -> Result<()> {
    let fields = nul_fields(v, prefix);
    if fields.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(fields))
    }
}

/// Adds an error for `field` when the text `v` holds NUL.
pub fn check_text(errors: &mut Vec<FieldError>, field: impl FnOnce() -> String, v: Option<&str>) {
    if v.is_some_and(has_nul) {
        errors.push(FieldError::new(field(), NUL_MESSAGE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_every_string_and_key_holding_nul() {
        let v = json!({"a": "ok", "b": ["x", "y\u{0}"], "c\u{0}": 1, "d": {"e": "\u{0}"}});
        let names: Vec<String> = nul_fields(&v, "metadata")
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(names, ["metadata.b.1", "metadata.c\\u0000", "metadata.d.e"]);
        assert!(nul_fields(&json!({"a": "\\u0000 is text"}), "").is_empty());
        assert_eq!(nul_fields(&json!("\u{0}"), "")[0].field, "");
        assert!(refuse_nul(&json!({"email": "a\u{0}@b.io"}), "").is_err());
    }
}
