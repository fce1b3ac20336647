//! Coerces a request's variables against the types its operation declares before anything runs
//! (the spec's CoerceVariableValues): a required variable missing or null, or a value that is not
//! of its type, fails the request as a whole (`BAD_USER_INPUT`, `extensions.variable` naming the
//! variable). async-graphql alone checks only the variables a field uses, names the argument
//! rather than the variable, and lets a missing required variable through to the resolver.
//!
//! A failure here is a request error: GraphQL over HTTP answers it `400` under
//! `application/graphql-response+json`.

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql::{Positioned, Request, ServerError, ServerResult, Value, Variables};

/// Checks `request`'s variables against the types its operation declares; `registry` holds
/// the schema's input types ([`super::pipeline`]). A document that does not parse, or names no
/// operation it holds, is left to the checks that say so.
pub(super) fn coerce_request(registry: &Registry, request: &mut Request) -> ServerResult<()> {
    let variables = std::mem::take(&mut request.variables);
    let operation_name = request.operation_name.clone();
    let checked = match request.parsed_query() {
        Err(_) => Ok(()),
        Ok(doc) => match operation(doc, operation_name.as_deref()) {
            Some(op) => coerce(registry, op, &variables),
            None => Ok(()),
        },
    };
    request.variables = variables;
    checked
}

/// The operation a request runs, when the document names it unambiguously.
fn operation<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Checks every variable `op` declares against `variables`.
fn coerce(
    registry: &Registry,
    op: &Positioned<OperationDefinition>,
    variables: &Variables,
) -> ServerResult<()> {
    for def in &op.node.variable_definitions {
        let name = def.node.name.node.as_str();
        let ty = def.node.var_type.node.to_string();
        let non_null = MetaTypeName::create(&ty).is_non_null();
        let reason = match variables.get(&def.node.name.node) {
            None if non_null && def.node.default_value.is_none() => {
                Some(format!(r#"required type "{ty}" was not provided"#))
            }
            None => None,
            Some(Value::Null) if non_null => {
                Some(format!(r#"non-null type "{ty}" must not be null"#))
            }
            Some(value) => invalid(registry, &ty, value, name),
        };
        if let Some(reason) = reason {
            let message = format!(r#"Variable "${name}" of {reason}"#);
            let mut e = ServerError::new(message.clone(), Some(def.pos));
            let ext = e.extensions.get_or_insert_with(Default::default);
            ext.set("code", domain::Code::BadUserInput.as_str());
            ext.set("variable", name);
            ext.set(
                "fields",
                Value::List(vec![
                    Value::from_json(serde_json::json!({
                        "field": name,
                        "message": message,
                    }))
                    .unwrap_or(Value::Null),
                ]),
            );
            return Err(e);
        }
    }
    Ok(())
}

/// Why `value` is not of the input type `ty` (at `path`), or `None` when it is. Types the
/// registry does not know, or that are not input types, are left to validation.
fn invalid(registry: &Registry, ty: &str, value: &Value, path: &str) -> Option<String> {
    let expected = |ty: &str| format!(r#"type "{ty}" got an invalid value at "{path}""#);
    match MetaTypeName::create(ty) {
        MetaTypeName::NonNull(inner) => match value {
            Value::Null => Some(format!(
                r#"type "{ty}" got null at "{path}", which must not be null"#
            )),
            _ => invalid(registry, inner, value, path),
        },
        MetaTypeName::List(inner) => match value {
            Value::List(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| invalid(registry, inner, item, &format!("{path}.{i}"))),
            Value::Null => None,
            // A single value stands for a list of one.
            _ => invalid(registry, inner, value, path),
        },
        MetaTypeName::Named(name) => {
            if *value == Value::Null {
                return None;
            }
            match registry.types.get(name)? {
                MetaType::Scalar {
                    is_valid: Some(is_valid),
                    ..
                } => (!is_valid(value)).then(|| expected(name)),
                MetaType::Scalar { is_valid: None, .. } => None,
                MetaType::Enum { enum_values, .. } => match value {
                    Value::Enum(v) if enum_values.contains_key(v.as_str()) => None,
                    Value::String(v) if enum_values.contains_key(v.as_str()) => None,
                    _ => Some(expected(name)),
                },
                MetaType::InputObject {
                    input_fields,
                    oneof,
                    ..
                } => {
                    let Value::Object(fields) = value else {
                        return Some(expected(name));
                    };
                    if *oneof && (fields.len() != 1 || fields.values().any(|v| *v == Value::Null)) {
                        return Some(format!(
                            r#"type "{name}" at "{path}" must set exactly one field, not null"#
                        ));
                    }
                    for field in input_fields.values() {
                        let at = format!("{path}.{}", field.name);
                        match fields.get(field.name.as_str()) {
                            Some(v) => {
                                if let Some(reason) = invalid(registry, &field.ty, v, &at) {
                                    return Some(reason);
                                }
                            }
                            None if MetaTypeName::create(&field.ty).is_non_null()
                                && field.default_value.is_none() =>
                            {
                                return Some(format!(
                                    r#"type "{name}" lacks the required field "{at}""#
                                ));
                            }
                            None => {}
                        }
                    }
                    fields
                        .keys()
                        .find(|k| !input_fields.contains_key(k.as_str()))
                        .map(|k| format!(r#"type "{name}" has no field "{path}.{k}""#))
                }
                _ => None,
            }
        }
    }
}
