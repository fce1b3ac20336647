//! The one ingest call of the server, shared by both transports (REST and Segment routes in
//! `http`, the ingest mutations in `graphql`): `domain::signals::ingest_many`, counted in the
//! metrics.

use domain::Actor;
use domain::signals::{Ingested, Input};

use crate::state::AppState;

/// Every ingest path of the server ends here: the one domain call, counted in the metrics.
pub async fn ingest(
    state: &AppState,
    actor: &Actor,
    inputs: Vec<Input>,
    prefix: &str,
    default_source: &str,
) -> Result<Vec<Result<Ingested, domain::Error>>, domain::Error> {
    let results =
        domain::signals::ingest_many(&state.db, actor, inputs, prefix, default_source).await?;
    state.metrics.count_ingest(&results, |i| i.deduplicated);
    Ok(results)
}

/// One signal through [`ingest`].
pub async fn ingest_one_signal(
    state: &AppState,
    actor: &Actor,
    input: Input,
    default_source: &str,
) -> Result<Ingested, domain::Error> {
    let one = ingest(state, actor, vec![input], "", default_source)
        .await?
        .pop()
        .ok_or_else(|| domain::Error::Internal("no signal ingested".into()))??;
    // A single signal that was dropped (it names an erased person) stored nothing: say so
    // as a refusal of the actor, as a batch item's `dropped` does.
    match one.dropped {
        Some(reason) => Err(domain::Error::invalid("actor", reason)),
        None => Ok(one),
    }
}
