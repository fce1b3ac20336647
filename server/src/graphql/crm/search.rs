//! `search(query, first)`: accounts, contacts and deals of the caller's organization, ranked.

use async_graphql::{Context, Object, SimpleObject, Union};
use domain::crm::search::Found;

use super::types::{Account, Contact, Deal};
use crate::graphql::common::read_db;
use crate::graphql::{GqlResultExt, actor};

/// What a search found.
#[derive(Union)]
pub enum SearchItem {
    Account(Account),
    Contact(Contact),
    Deal(Deal),
}

/// One search hit.
#[derive(SimpleObject)]
pub struct SearchHit {
    /// Relevance; higher is better (comparable within one result list only).
    pub rank: f64,
    pub item: SearchItem,
}

#[derive(Default)]
pub struct SearchQuery;

#[Object]
impl SearchQuery {
    /// Full-text search over account names, domains, industries and descriptions, contact
    /// names, emails, titles and notes, and deal titles and descriptions; best first. Every word
    /// must match (on SQLite as a word prefix).
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, None, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn search(
        &self,
        ctx: &Context<'_>,
        query: String,
        #[graphql(desc = "At most this many hits, 1 to 100 (default 20).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<SearchHit>> {
        let actor = actor(ctx)?;
        let first = u64::try_from(first.unwrap_or(20)).unwrap_or(0);
        let hits = domain::crm::search::search(&*read_db(ctx).await?, actor, &query, first)
            .await
            .gql()?;
        Ok(hits
            .into_iter()
            .map(|h| SearchHit {
                rank: h.rank,
                item: match h.found {
                    Found::Account(m) => SearchItem::Account(Account::new(m)),
                    Found::Contact(m) => SearchItem::Contact(Contact(m)),
                    Found::Deal(m) => SearchItem::Deal(Deal(*m)),
                },
            })
            .collect())
    }
}
