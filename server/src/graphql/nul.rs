//! Refuses the NUL character (U+0000) in any GraphQL input ([`domain::text`]) before anything
//! executes: every argument of every field and directive in the document, literals and
//! variables alike (unused variables are not inputs). The error is `BAD_USER_INPUT` with each
//! field named as resolvers name theirs: an `input` object's fields by their own names
//! (`email`, `actor.email`), any other argument under its name (`filter.tag`, `input.1.email`).
//!
//! The items of a batch ingest (`ingestSignals(inputs:)`) are left to ingest itself, which
//! refuses a bad item alone (`inputs.<index>.<field>`) and stores the others.

use std::collections::HashMap;
use std::convert::Infallible;

use async_graphql::parser::types::{Directive, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Positioned, ServerError, ServerResult, Value, Variables};
use domain::FieldError;

/// Arguments checked per item by their resolver: (field, argument).
const PER_ITEM: &[(&str, &str)] = &[("ingestSignals", "inputs")];

/// Refuses `doc` when any of its inputs (with `variables`) holds NUL: `BAD_USER_INPUT`, every
/// such field named.
pub(super) fn refuse(doc: &ExecutableDocument, variables: &Variables) -> ServerResult<()> {
    let fields = nul_fields(doc, variables);
    if fields.is_empty() {
        return Ok(());
    }
    let err = crate::graphql::gql_error(domain::Error::Validation(fields));
    let mut server_error = ServerError::new(err.message, None);
    server_error.extensions = err.extensions;
    Err(server_error)
}

/// An argument's value (the parser's type, which this crate does not name) with its variables
/// replaced by the request's values or their defaults.
macro_rules! resolve {
    ($walk:expr, $value:expr) => {
        $value
            .clone()
            .into_const_with(|var| {
                Ok::<_, Infallible>(
                    $walk
                        .variables
                        .get(&var)
                        .or_else(|| $walk.defaults.get(&var).copied())
                        .cloned()
                        .unwrap_or_default(),
                )
            })
            .unwrap_or_else(|never| match never {})
    };
}

struct Walk<'a> {
    variables: &'a Variables,
    defaults: HashMap<&'a Name, &'a Value>,
    out: Vec<FieldError>,
}

/// Every input of `doc` holding NUL, named.
fn nul_fields(doc: &ExecutableDocument, variables: &Variables) -> Vec<FieldError> {
    let mut w = Walk {
        variables,
        defaults: HashMap::new(),
        out: Vec::new(),
    };
    for (_, op) in doc.operations.iter() {
        for v in &op.node.variable_definitions {
            if let Some(d) = &v.node.default_value {
                w.defaults.insert(&v.node.name.node, &d.node);
            }
        }
    }
    for (_, op) in doc.operations.iter() {
        w.directives(&op.node.directives);
        w.selection_set(&op.node.selection_set.node);
    }
    for frag in doc.fragments.values() {
        w.directives(&frag.node.directives);
        w.selection_set(&frag.node.selection_set.node);
    }
    w.out
}

impl Walk<'_> {
    fn selection_set(&mut self, set: &SelectionSet) {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let field = &f.node;
                    for (name, value) in &field.arguments {
                        if PER_ITEM.contains(&(field.name.node.as_str(), name.node.as_str())) {
                            continue;
                        }
                        let v = resolve!(self, value.node);
                        self.argument(&name.node, v);
                    }
                    self.directives(&field.directives);
                    self.selection_set(&field.selection_set.node);
                }
                Selection::FragmentSpread(s) => self.directives(&s.node.directives),
                Selection::InlineFragment(i) => {
                    self.directives(&i.node.directives);
                    self.selection_set(&i.node.selection_set.node);
                }
            }
        }
    }

    fn directives(&mut self, directives: &[Positioned<Directive>]) {
        for d in directives {
            for (name, value) in &d.node.arguments {
                let v = resolve!(self, value.node);
                self.argument(&name.node, v);
            }
        }
    }

    fn argument(&mut self, name: &Name, value: Value) {
        let Ok(json) = value.into_json() else {
            return;
        };
        // Resolvers name an `input` object's fields without the argument's name.
        let prefix = if name.as_str() == "input" && json.is_object() {
            ""
        } else {
            name.as_str()
        };
        self.out.extend(domain::text::nul_fields(&json, prefix));
    }
}
