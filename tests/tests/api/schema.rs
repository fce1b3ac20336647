//! `schema.graphql` is the committed contract: it must equal the served schema.
//! `UPDATE_SCHEMA=1 cargo test -p devsignal-tests schema` rewrites it.

use std::path::PathBuf;

#[test]
fn schema_graphql_matches_the_served_schema() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema.graphql");
    let served = format!("{}\n", server::graphql::sdl().trim_end());
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &served).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == served,
        "schema.graphql differs from the served schema; if the change is intended run \
         `UPDATE_SCHEMA=1 cargo test -p devsignal-tests schema` and commit the file"
    );
}
