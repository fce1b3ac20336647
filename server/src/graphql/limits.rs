//! Limits on one GraphQL document, checked before async-graphql validates or runs anything: its
//! size, the number of fields it selects once every fragment spread is expanded, aliases,
//! fragments, directives, root mutation fields, and how often one field may nest inside itself
//! (relations form cycles: `account { contacts { account { … } } }`). Each check is linear in the
//! document's size (a fragment's expanded size is computed once), so a small document that would
//! expand to millions of fields is refused before anything walks it.
//!
//! The same check picks the operation the request runs (a missing or unknown `operationName` is
//! the client's mistake, `BAD_REQUEST`) and counts the operation against the `api` rate limit per
//! root mutation field (aliases included) and per WebSocket operation.

use std::collections::HashMap;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Data, Request, ServerError, ServerResult};

use crate::auth::ClientIp;
use crate::auth::ratelimit::Limiter;
use crate::state::AppState;

/// The largest GraphQL document accepted, in bytes (variables are separate and not counted).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The most fields one document may select once every fragment spread is expanded (`__typename`
/// counts too).
pub const MAX_SELECTIONS: usize = 5_000;
/// The most aliased fields in one document.
pub const MAX_ALIASES: usize = 50;
/// The most fragment definitions in one document.
pub const MAX_FRAGMENTS: usize = 100;
/// The most fragment spreads written in one document (before expansion).
pub const MAX_FRAGMENT_SPREADS: usize = 200;
/// The most directives written in one document.
pub const MAX_DIRECTIVES: usize = 50;
/// The most root fields (aliases included) one mutation may run.
pub const MAX_MUTATION_FIELDS: usize = 10;
/// How often the same field may appear on one path from the root (introspection aside):
/// `account { contacts { account { contacts { account { contacts } } } } }` is the most.
pub const MAX_SAME_FIELD_ON_PATH: usize = 3;
/// How deeply the parser may nest selection sets, fragments and values.
pub const MAX_RECURSION: usize = 32;

/// Marks a WebSocket connection's data: each of its operations counts against the rate limit
/// (the HTTP middleware only counted the upgrade).
#[derive(Clone, Copy, Debug)]
pub struct OverWebSocket;

fn refused(code: domain::Code, message: impl Into<String>) -> ServerError {
    let mut e = ServerError::new(message, None);
    e.extensions
        .get_or_insert_with(Default::default)
        .set("code", code.as_str());
    e
}

fn too_much(what: &str, n: usize, max: usize) -> ServerError {
    refused(
        domain::Code::GraphqlValidationFailed,
        format!("the document has {what} {n}; at most {max} are allowed"),
    )
}

/// What the checks learnt about the operation the request runs.
#[derive(Debug, PartialEq, Eq)]
pub struct Shape {
    /// Root fields of the operation when it is a mutation (each counts against the rate limit).
    pub mutation_fields: usize,
}

/// Checks `doc` against every limit and picks the operation named `operation_name`.
pub fn check(doc: &ExecutableDocument, operation_name: Option<&str>) -> ServerResult<Shape> {
    if doc.fragments.len() > MAX_FRAGMENTS {
        return Err(too_much(
            "fragment definitions:",
            doc.fragments.len(),
            MAX_FRAGMENTS,
        ));
    }
    let mut counts = Counts::default();
    for (_, op) in doc.operations.iter() {
        counts.directives += op.node.directives.len();
        counts.written(&op.node.selection_set.node);
    }
    for fragment in doc.fragments.values() {
        counts.directives += fragment.node.directives.len();
        counts.written(&fragment.node.selection_set.node);
    }
    if counts.aliases > MAX_ALIASES {
        return Err(too_much("aliases:", counts.aliases, MAX_ALIASES));
    }
    if counts.spreads > MAX_FRAGMENT_SPREADS {
        return Err(too_much(
            "fragment spreads:",
            counts.spreads,
            MAX_FRAGMENT_SPREADS,
        ));
    }
    if counts.directives > MAX_DIRECTIVES {
        return Err(too_much("directives:", counts.directives, MAX_DIRECTIVES));
    }

    let mut expansion = Expansion {
        doc,
        sizes: HashMap::new(),
    };
    for (_, op) in doc.operations.iter() {
        let n = expansion.size(&op.node.selection_set.node)?;
        if n > MAX_SELECTIONS {
            return Err(refused(
                domain::Code::GraphqlValidationFailed,
                format!(
                    "the document selects more than {MAX_SELECTIONS} fields once its fragments \
                     are expanded; select fewer fields or spread fragments less often"
                ),
            ));
        }
        let mut path = HashMap::new();
        repeats(doc, &op.node.selection_set.node, &mut path)?;
    }

    let op = operation(doc, operation_name)?;
    let mutation_fields = if op.ty == OperationType::Mutation {
        let n = root_fields(doc, &op.selection_set.node);
        if n > MAX_MUTATION_FIELDS {
            return Err(refused(
                domain::Code::GraphqlValidationFailed,
                format!(
                    "the mutation runs {n} fields; at most {MAX_MUTATION_FIELDS} are allowed in \
                     one operation"
                ),
            ));
        }
        n
    } else {
        0
    };
    Ok(Shape { mutation_fields })
}

/// The operation a request runs: the one named, or the only one.
fn operation<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> ServerResult<&'a OperationDefinition> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), None) => Ok(&op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops
            .values()
            .next()
            .map(|op| &op.node)
            .ok_or_else(|| refused(domain::Code::BadRequest, "the document has no operation")),
        (DocumentOperations::Multiple(ops), None) => {
            let mut names: Vec<&str> = ops.keys().map(|n| n.as_str()).collect();
            names.sort_unstable();
            Err(refused(
                domain::Code::BadRequest,
                format!(
                    "the document has several operations ({}); say which to run with \
                     `operationName`",
                    names.join(", ")
                ),
            ))
        }
        (DocumentOperations::Single(_), Some(name)) => Err(refused(
            domain::Code::BadRequest,
            format!(
                "`operationName` is {name:?} but the document's only operation has no name; \
                 name it or leave `operationName` out"
            ),
        )),
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(name).map(|op| &op.node).ok_or_else(|| {
                refused(
                    domain::Code::BadRequest,
                    format!("`operationName` is {name:?}, but the document has no such operation"),
                )
            })
        }
    }
}

#[derive(Default)]
struct Counts {
    aliases: usize,
    spreads: usize,
    directives: usize,
}

impl Counts {
    /// Counts what is written in a selection set (not expanded).
    fn written(&mut self, set: &SelectionSet) {
        for sel in &set.items {
            self.directives += sel.node.directives().len();
            match &sel.node {
                Selection::Field(f) => {
                    if f.node.alias.is_some() {
                        self.aliases += 1;
                    }
                    self.written(&f.node.selection_set.node);
                }
                Selection::InlineFragment(f) => self.written(&f.node.selection_set.node),
                Selection::FragmentSpread(_) => self.spreads += 1,
            }
        }
    }
}

/// Expanded sizes, each fragment's computed once.
struct Expansion<'a> {
    doc: &'a ExecutableDocument,
    /// `None` while a fragment is being expanded (seeing it again is a cycle).
    sizes: HashMap<&'a str, Option<usize>>,
}

impl<'a> Expansion<'a> {
    fn size(&mut self, set: &'a SelectionSet) -> ServerResult<usize> {
        let mut n = 0usize;
        for sel in &set.items {
            let add = match &sel.node {
                Selection::Field(f) => {
                    1usize.saturating_add(self.size(&f.node.selection_set.node)?)
                }
                Selection::InlineFragment(f) => self.size(&f.node.selection_set.node)?,
                Selection::FragmentSpread(s) => {
                    self.fragment(s.node.fragment_name.node.as_str())?
                }
            };
            n = n.saturating_add(add);
            if n > MAX_SELECTIONS {
                break;
            }
        }
        Ok(n)
    }

    fn fragment(&mut self, name: &'a str) -> ServerResult<usize> {
        match self.sizes.get(name) {
            Some(Some(n)) => Ok(*n),
            Some(None) => Err(refused(
                domain::Code::GraphqlValidationFailed,
                format!("fragment {name:?} spreads itself"),
            )),
            None => {
                // An unknown fragment is left to validation, which names it.
                let Some(def) = self.doc.fragments.get(name) else {
                    return Ok(0);
                };
                self.sizes.insert(name, None);
                let n = self.size(&def.node.selection_set.node)?;
                self.sizes.insert(name, Some(n));
                Ok(n)
            }
        }
    }
}

/// Refuses a field that appears more than [`MAX_SAME_FIELD_ON_PATH`] times on one path. Runs
/// after the expansion check, so it visits at most [`MAX_SELECTIONS`] fields.
fn repeats<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    path: &mut HashMap<&'a str, usize>,
) -> ServerResult<()> {
    for sel in &set.items {
        match &sel.node {
            Selection::Field(f) => {
                let name = f.node.name.node.as_str();
                if name.starts_with("__") || f.node.selection_set.node.items.is_empty() {
                    // Introspection nests `ofType` by design; leaves cannot nest.
                    continue;
                }
                let count = path.entry(name).or_insert(0);
                *count += 1;
                if *count > MAX_SAME_FIELD_ON_PATH {
                    return Err(refused(
                        domain::Code::GraphqlValidationFailed,
                        format!(
                            "`{name}` is nested inside itself more than {MAX_SAME_FIELD_ON_PATH} \
                             times on one path; follow a relation cycle less deeply"
                        ),
                    ));
                }
                repeats(doc, &f.node.selection_set.node, path)?;
                if let Some(count) = path.get_mut(name) {
                    *count -= 1;
                }
            }
            Selection::InlineFragment(f) => repeats(doc, &f.node.selection_set.node, path)?,
            Selection::FragmentSpread(s) => {
                if let Some(def) = doc.fragments.get(s.node.fragment_name.node.as_str()) {
                    repeats(doc, &def.node.selection_set.node, path)?;
                }
            }
        }
    }
    Ok(())
}

/// Root fields of an operation, through fragments at the root.
fn root_fields(doc: &ExecutableDocument, set: &SelectionSet) -> usize {
    fn count(doc: &ExecutableDocument, set: &SelectionSet, depth: usize) -> usize {
        if depth > MAX_FRAGMENTS {
            return 0;
        }
        set.items
            .iter()
            .map(|sel| match &sel.node {
                Selection::Field(_) => 1,
                Selection::InlineFragment(f) => count(doc, &f.node.selection_set.node, depth + 1),
                Selection::FragmentSpread(s) => doc
                    .fragments
                    .get(s.node.fragment_name.node.as_str())
                    .map_or(0, |d| count(doc, &d.node.selection_set.node, depth + 1)),
            })
            .fold(0usize, usize::saturating_add)
    }
    count(doc, set, 0)
}

/// Enforces these limits on `request` (parsing its document, which async-graphql then reuses)
/// and counts it against the `api` rate limit beyond what the HTTP middleware counted: a
/// mutation once per root field, a WebSocket operation (the upgrade was the only request the
/// middleware saw) once more. `session` is the WebSocket connection's data, if any.
pub(super) async fn admit(
    state: Option<&AppState>,
    request: &mut Request,
    session: Option<&Data>,
) -> ServerResult<()> {
    if request.query.len() > MAX_DOCUMENT_BYTES {
        return Err(refused(
            domain::Code::GraphqlValidationFailed,
            format!(
                "the document is {} bytes; at most {MAX_DOCUMENT_BYTES} are allowed (pass \
                 large values as variables)",
                request.query.len()
            ),
        ));
    }
    let operation_name = request.operation_name.clone();
    let shape = match request.parsed_query() {
        Ok(doc) => check(doc, operation_name.as_deref())?,
        Err(mut e) => {
            e.extensions
                .get_or_insert_with(Default::default)
                .set("code", domain::Code::GraphqlParseFailed.as_str());
            return Err(e);
        }
    };
    let websocket = super::pipeline::find::<OverWebSocket>(request, session).is_some();
    let extra = shape.mutation_fields.saturating_sub(1) + usize::from(websocket);
    if extra > 0
        && let Some(state) = state
    {
        let ip = super::pipeline::find::<ClientIp>(request, session)
            .cloned()
            .unwrap_or_else(|| ClientIp::address("unknown"));
        let n = u32::try_from(extra).unwrap_or(u32::MAX);
        let d = state.identity.limiter.hit_n(Limiter::Api, &ip, n).await;
        if !d.allowed {
            let mut e = refused(
                domain::Code::RateLimited,
                format!(
                    "too many requests (api limiter: {} operations per minute); retry in {} s",
                    d.limit, d.reset_secs
                ),
            );
            e.extensions
                .get_or_insert_with(Default::default)
                .set("retryAfter", d.reset_secs);
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn shape(q: &str, name: Option<&str>) -> ServerResult<Shape> {
        check(&parse_query(q).unwrap(), name)
    }

    #[test]
    fn fragment_fan_out_is_counted_without_expanding_it() {
        let mut q = String::from("query { ...F20 }\nfragment F0 on QueryRoot { __typename }\n");
        for i in 1..=20 {
            q.push_str(&format!(
                "fragment F{i} on QueryRoot {{ ...F{p} ...F{p} }}\n",
                p = i - 1
            ));
        }
        let e = shape(&q, None).unwrap_err();
        assert!(e.message.contains("more than 5000 fields"), "{}", e.message);
    }

    #[test]
    fn a_fragment_cycle_is_refused() {
        let e = shape(
            "{ ...A } fragment A on QueryRoot { ...B } fragment B on QueryRoot { ...A }",
            None,
        )
        .unwrap_err();
        assert!(e.message.contains("spreads itself"), "{}", e.message);
    }

    #[test]
    fn relation_cycles_nest_at_most_three_times() {
        let ok = "{ a { contacts { account { contacts { account { contacts { id } } } } } } }";
        assert!(shape(ok, None).is_ok());
        let deep = "{ a { contacts { account { contacts { account { contacts { account { \
                    contacts { id } } } } } } } } }";
        assert!(shape(deep, None).is_err());
    }

    #[test]
    fn mutation_fields_are_counted_through_fragments() {
        let s = shape(
            "mutation { a: x b: x ...M } fragment M on MutationRoot { c: x }",
            None,
        )
        .unwrap();
        assert_eq!(s.mutation_fields, 3);
    }

    #[test]
    fn the_operation_is_picked_by_name() {
        assert!(shape("query A { x } query B { y }", Some("B")).is_ok());
        for (q, name) in [
            ("query A { x } query B { y }", None),
            ("query A { x } query B { y }", Some("C")),
            ("{ x }", Some("A")),
        ] {
            let e = shape(q, name).unwrap_err();
            let code = e.extensions.unwrap();
            assert_eq!(
                code.get("code"),
                Some(&async_graphql::Value::from("BAD_REQUEST"))
            );
        }
    }
}
