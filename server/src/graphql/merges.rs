//! Contact merges over GraphQL: `mergeContacts`, `unmergeContact`,
//! `mergeSuggestions` and `contactMerges`. Resolvers read the actor, call one `domain::signals::merges`
//! function and wrap the result; the types wrap domain structs.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::common::db;
use super::common::{input_id, meta};
use super::crm::loaders::{ContactId, UserId};
use super::crm::types::{Contact, load};
use super::identity::types::User;
use crate::graphql::{GqlResultExt, actor};

/// Why a merge happened.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MergeReason {
    /// A person merged the contacts (`mergeContacts`).
    Manual,
    /// Ingest merged them: one signal named both, with confidence of at least 0.8.
    Auto,
}

/// What two contacts have in common.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MergeEvidenceKind {
    Email,
    Github,
    Npm,
    Twitter,
    Linkedin,
    /// The same first and last name.
    Name,
}

/// Where a piece of evidence was seen on a contact.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum EvidenceSource {
    /// One of the contact's identities.
    Identity,
    /// A field of the contact (email, GitHub, Twitter/X, LinkedIn, name).
    Field,
    /// A signal attributed to the contact carried the value as an identity hint.
    Signal,
}

/// One contact on which a piece of evidence was seen.
#[derive(SimpleObject)]
pub struct EvidenceSighting {
    /// The contact (it may since have been merged away).
    pub contact_id: ID,
    /// How the value was seen on it.
    pub source: EvidenceSource,
}

/// One reason to believe two contacts are one person.
pub struct MergeEvidence(pub domain::signals::merges::Evidence);

/// One reason to believe two contacts are one person.
#[Object]
impl MergeEvidence {
    /// What kind of value the two share.
    async fn kind(&self) -> MergeEvidenceKind {
        match self.0.kind.as_str() {
            "EMAIL" => MergeEvidenceKind::Email,
            "GITHUB" => MergeEvidenceKind::Github,
            "NPM" => MergeEvidenceKind::Npm,
            "TWITTER" => MergeEvidenceKind::Twitter,
            "LINKEDIN" => MergeEvidenceKind::Linkedin,
            _ => MergeEvidenceKind::Name,
        }
    }
    /// The shared value, normalised (lower-cased; a full name for NAME).
    async fn value(&self) -> &str {
        &self.0.value
    }
    /// What this piece says on its own: email 1.0, GitHub and npm 0.95, Twitter/X and
    /// LinkedIn 0.9, the same full name 0.7 at the same account and 0.5 otherwise.
    async fn confidence(&self) -> f64 {
        self.0.confidence
    }
    /// Where it was seen, on each side.
    async fn seen_on(&self) -> Vec<EvidenceSighting> {
        self.0
            .seen_on
            .iter()
            .map(|s| EvidenceSighting {
                contact_id: ID(s.contact_id.to_string()),
                source: match s.source.as_str() {
                    "IDENTITY" => EvidenceSource::Identity,
                    "SIGNAL" => EvidenceSource::Signal,
                    _ => EvidenceSource::Field,
                },
            })
            .collect()
    }
}

fn evidence(list: &[domain::signals::merges::Evidence]) -> Vec<MergeEvidence> {
    list.iter().cloned().map(MergeEvidence).collect()
}

/// One merge of a duplicate contact into a primary, reversible with `unmergeContact`.
pub struct ContactMerge(pub domain::signals::merges::Merge);

/// One merge of a duplicate contact into a primary, reversible with `unmergeContact`.
#[Object]
impl ContactMerge {
    /// The merge's id (pass it to `unmergeContact`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The contact that was kept.
    async fn primary_id(&self) -> ID {
        ID(self.0.primary_id.to_string())
    }
    /// The contact that was kept, while it exists.
    async fn primary(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(load(ctx, Some(ContactId(self.0.primary_id)))
            .await?
            .map(Contact))
    }
    /// The contact that was merged away (and exists again once the merge is undone).
    async fn merged_contact_id(&self) -> ID {
        ID(self.0.merged_id.to_string())
    }
    /// MANUAL or AUTO.
    async fn reason(&self) -> MergeReason {
        match self.0.reason.as_str() {
            "AUTO" => MergeReason::Auto,
            _ => MergeReason::Manual,
        }
    }
    /// AUTO: the strongest hint that named both contacts. MANUAL: the combined confidence of
    /// the evidence the pair shared at the time, null when they shared none.
    async fn confidence(&self) -> Option<f64> {
        self.0.confidence
    }
    /// What the two contacts had in common when they were merged.
    async fn evidence(&self) -> Vec<MergeEvidence> {
        evidence(&self.0.evidence)
    }
    /// When they were merged.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the merge was undone; null while it stands.
    async fn undone_at(&self) -> Option<DateTime<Utc>> {
        self.0.undone_at
    }
    /// The member who merged (for AUTO, whoever ingested the signal); null for API keys or
    /// users who left the organization.
    async fn merged_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load(ctx, self.0.merged_by.map(UserId))
            .await?
            .map(User::from))
    }
}

/// The outcome of `mergeContacts`.
#[derive(SimpleObject)]
pub struct MergeResult {
    /// The primary contact as it is after the merge.
    pub contact: Contact,
    /// One record per duplicate, in the order given.
    pub merges: Vec<ContactMerge>,
}

/// Two contacts that look like one person.
pub struct MergeSuggestion(pub domain::signals::merges::Suggestion);

/// Two contacts that look like one person.
#[Object]
impl MergeSuggestion {
    /// The two contacts, the older first.
    async fn contacts(&self) -> Vec<Contact> {
        self.0.contacts.iter().cloned().map(Contact).collect()
    }
    /// All the evidence combined: 1 − Π(1 − c) over the pieces, at most 1.
    async fn confidence(&self) -> f64 {
        self.0.confidence
    }
    /// What the two have in common, strongest first.
    async fn evidence(&self) -> Vec<MergeEvidence> {
        evidence(&self.0.evidence)
    }
    /// A merge of these two was undone before: a person judged them different.
    async fn previously_unmerged(&self) -> bool {
        self.0.previously_unmerged
    }
}

/// `first` as given, 20 when null.
fn first_of(first: Option<i32>) -> u64 {
    u64::try_from(first.unwrap_or(20)).unwrap_or(0)
}

#[derive(Default)]
pub struct MergeQuery;

#[Object]
impl MergeQuery {
    /// Pairs of contacts that look like the same person, highest confidence first, with the
    /// evidence for each: the same email, GitHub, npm, Twitter/X or LinkedIn (in a field or an
    /// identity) or the same full name. Nothing is merged.
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, None, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn merge_suggestions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "At most this many, 1 to 100.")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<MergeSuggestion>> {
        let rows =
            domain::signals::merges::suggestions(&*db(ctx).await?, actor(ctx)?, first_of(first))
                .await
                .gql()?;
        Ok(rows.into_iter().map(MergeSuggestion).collect())
    }

    /// The organization's merges, newest first; with `contactId`, only those where that
    /// contact was kept or merged away.
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, None, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn contact_merges(
        &self,
        ctx: &Context<'_>,
        contact_id: Option<ID>,
        #[graphql(default = 20, desc = "At most this many, 1 to 100.")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<ContactMerge>> {
        let contact = contact_id.map(|c| input_id(&c, "contactId")).transpose()?;
        let rows =
            domain::signals::merges::list(&*db(ctx).await?, actor(ctx)?, contact, first_of(first))
                .await
                .gql()?;
        Ok(rows.into_iter().map(ContactMerge).collect())
    }
}

#[derive(Default)]
pub struct MergeMutation;

#[Object]
impl MergeMutation {
    /// Merges 1 to 50 duplicates into the primary contact (MEMBER+), all or nothing: their
    /// signals, activities, deals and identities move to it, their tags are added, its empty
    /// fields are filled from them, it inherits an account if it has none, and the duplicates
    /// are deleted. Every merge is recorded and can be undone with `unmergeContact`.
    async fn merge_contacts(
        &self,
        ctx: &Context<'_>,
        primary_id: ID,
        duplicate_ids: Vec<ID>,
    ) -> async_graphql::Result<MergeResult> {
        let primary = input_id(&primary_id, "primaryId")?;
        let dups = duplicate_ids
            .iter()
            .map(|d| input_id(d, "duplicateIds"))
            .collect::<async_graphql::Result<Vec<_>>>()?;
        let out = domain::signals::merges::merge(
            &*db(ctx).await?,
            actor(ctx)?,
            &meta(ctx),
            primary,
            dups,
        )
        .await
        .gql()?;
        Ok(MergeResult {
            contact: Contact(out.contact),
            merges: out.merges.into_iter().map(ContactMerge).collect(),
        })
    }

    /// Undoes a merge (MEMBER+): the merged contact comes back with its id and fields, and
    /// exactly what the merge moved or changed is reversed, except where the primary was edited
    /// since (the edit wins). `CONFLICT` if already undone, if the primary no longer exists, or
    /// if the contact's email now belongs to another contact. Returns the restored contact.
    /// A pair whose merge was undone is never auto-merged again.
    async fn unmerge_contact(
        &self,
        ctx: &Context<'_>,
        merge_id: ID,
    ) -> async_graphql::Result<Contact> {
        let id = input_id(&merge_id, "mergeId")?;
        let m = domain::signals::merges::unmerge(&*db(ctx).await?, actor(ctx)?, &meta(ctx), id)
            .await
            .gql()?;
        Ok(Contact(m))
    }
}
