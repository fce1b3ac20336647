//! The hot models read by column position (`domain::db::rows`) equal the same rows read by
//! sea-orm's derived decoding, by name: each model with every column set (each to a value no
//! other column of its type holds, so two columns read in each other's place would differ) and
//! with every nullable column NULL, alone, joined (an account with and without its score, a
//! score with its account) and as an account's nested rows.

use chrono::{DateTime, Duration, Utc};
use devsignal_tests::bench::api_source;
use devsignal_tests::spawn_app_with;
use domain::db::rows;
use domain::{Actor, Principal, Role};
use entity::{
    account_scores, activities, api_keys, companies, contacts, deals, memberships, signals,
};
use sea_orm::ActiveValue::Set;
use sea_orm::{EntityTrait, JoinType, QueryOrder, QuerySelect};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn positional_reads_equal_derived_reads() {
    let app = spawn_app_with(&[]).await;
    let owner = app.register("rows@example.com", "Rows").await;
    let org = Uuid::parse_str(&owner.organization_id).unwrap();
    let user = Uuid::parse_str(&owner.user_id).unwrap();
    let key = app.api_key(&owner, &["signals:write"]).await;
    let db = &app.db;
    let source = api_source(&app, &key, db, org).await;
    // Distinct instants, whole seconds (both backends keep them exactly).
    let now = DateTime::<Utc>::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let at = |n: i64| now - Duration::seconds(n);
    let id = Uuid::now_v7;

    let (full_co, bare_co, unscored_co) = (id(), id(), id());
    let company = |id: Uuid, full: bool| {
        let s = |v: &str| full.then(|| v.to_owned());
        companies::ActiveModel {
            id: Set(id),
            organization_id: Set(org),
            name: Set(format!("name {id}")),
            domain: Set(s("Domain.io")),
            domain_normalized: Set(s("domain.io")),
            industry: Set(s("industry")),
            size: Set(s("SMALL")),
            website: Set(s("https://website.io")),
            github_org: Set(s("github-org")),
            city: Set(s("city")),
            country: Set(s("country")),
            description: Set(s("description")),
            custom_fields: Set(json!({"custom": 1})),
            tags: Set(json!(["tag"])),
            score: Set(full.then_some(77)),
            created_at: Set(at(1)),
            updated_at: Set(at(2)),
        }
    };
    companies::Entity::insert_many([
        company(full_co, true),
        company(bare_co, false),
        company(unscored_co, false),
    ])
    .exec(db)
    .await
    .unwrap();
    let score = |account: Uuid, full: bool| account_scores::ActiveModel {
        account_id: Set(account),
        organization_id: Set(org),
        score: Set(if full { 77 } else { 5 }),
        tier: Set("HOT".into()),
        trend: Set("RISING".into()),
        factors: Set(json!([{"factor": 1}])),
        signal_count: Set(12),
        user_count: Set(3),
        last_signal_at: Set(full.then(|| at(3))),
        config_version: Set(4),
        computed_at: Set(at(4)),
    };
    account_scores::Entity::insert_many([score(full_co, true), score(bare_co, false)])
        .exec(db)
        .await
        .unwrap();

    let (full_person, bare_person) = (id(), id());
    let contact = |id: Uuid, full: bool| {
        let s = |v: &str| full.then(|| v.to_owned());
        contacts::ActiveModel {
            id: Set(id),
            organization_id: Set(org),
            account_id: Set(Some(if full { full_co } else { bare_co })),
            first_name: Set(s("first")),
            last_name: Set(s("last")),
            email: Set(s("Person@Domain.io")),
            email_normalized: Set(s("person@domain.io")),
            title: Set(s("title")),
            phone: Set(s("+1 555")),
            github: Set(s("gh-login")),
            twitter: Set(s("tw-handle")),
            linked_in: Set(s("li-profile")),
            city: Set(s("c-city")),
            country: Set(s("c-country")),
            notes: Set(s("notes")),
            custom_fields: Set(json!({"c": 2})),
            tags: Set(json!(["t2"])),
            created_at: Set(at(5)),
            updated_at: Set(at(6)),
        }
    };
    contacts::Entity::insert_many([contact(full_person, true), contact(bare_person, false)])
        .exec(db)
        .await
        .unwrap();

    let (full_deal, bare_deal) = (id(), id());
    let deal = |id: Uuid, full: bool| deals::ActiveModel {
        id: Set(id),
        organization_id: Set(org),
        title: Set("deal title".into()),
        amount: Set(full.then_some(1234.5)),
        currency: Set("EUR".into()),
        stage: Set("PROPOSAL".into()),
        probability: Set(full.then_some(60)),
        account_id: Set(full.then_some(full_co)),
        contact_id: Set(full.then_some(full_person)),
        owner_id: Set(full.then_some(user)),
        expected_close_date: Set(full.then(|| at(7).date_naive())),
        closed_at: Set(full.then(|| at(8))),
        description: Set(full.then(|| "deal description".into())),
        custom_fields: Set(json!({"d": 3})),
        tags: Set(json!(["t3"])),
        created_at: Set(at(9)),
        updated_at: Set(at(10)),
    };
    deals::Entity::insert_many([deal(full_deal, true), deal(bare_deal, false)])
        .exec(db)
        .await
        .unwrap();

    let activity = |full: bool| activities::ActiveModel {
        id: Set(id()),
        organization_id: Set(org),
        kind: Set("TASK".into()),
        title: Set("activity title".into()),
        description: Set(full.then(|| "activity description".into())),
        status: Set("OPEN".into()),
        priority: Set("HIGH".into()),
        due_date: Set(full.then(|| at(11))),
        completed_at: Set(full.then(|| at(12))),
        author_id: Set(full.then_some(user)),
        account_id: Set(Some(full_co)),
        contact_id: Set(full.then_some(full_person)),
        deal_id: Set(full.then_some(full_deal)),
        custom_fields: Set(json!({"a": 4})),
        created_at: Set(at(13)),
        updated_at: Set(at(14)),
    };
    activities::Entity::insert_many([activity(true), activity(false)])
        .exec(db)
        .await
        .unwrap();

    let signal = |full: bool| signals::ActiveModel {
        id: Set(id()),
        organization_id: Set(org),
        source_id: Set(source),
        signal_type: Set("repo_star".into()),
        contact_id: Set(full.then_some(full_person)),
        account_id: Set(full.then_some(full_co)),
        anonymous_id: Set(full.then(|| "anon".into())),
        metadata: Set(json!({"m": 5})),
        idempotency_key: Set(full.then(|| "idem".into())),
        dedupe_key: Set(format!("dedupe {full}")),
        timestamp: Set(at(15)),
        created_at: Set(at(16)),
    };
    signals::Entity::insert_many([signal(true), signal(false)])
        .exec(db)
        .await
        .unwrap();

    // Alone: both ways, and the rows read hold every value set.
    macro_rules! same {
        ($entity:ident, $order:expr) => {{
            let q = || $entity::Entity::find().order_by_asc($order);
            let derived = q().all(db).await.unwrap();
            let positional = rows::all(db, q()).await.unwrap();
            assert!(derived.len() >= 2, "{}", stringify!($entity));
            assert_eq!(positional, derived, "{}", stringify!($entity));
            derived
        }};
    }
    let read = same!(companies, companies::Column::Id);
    let of = |id: Uuid| read.iter().find(|m| m.id == id).unwrap();
    assert_eq!(of(full_co).website.as_deref(), Some("https://website.io"));
    assert_eq!(of(bare_co).website, None);
    let read = same!(account_scores, account_scores::Column::AccountId);
    let of = |id: Uuid| read.iter().find(|m| m.account_id == id).unwrap();
    assert!(of(full_co).last_signal_at.is_some() && of(bare_co).last_signal_at.is_none());
    let read = same!(contacts, contacts::Column::Id);
    let of = |id: Uuid| read.iter().find(|m| m.id == id).unwrap();
    assert_eq!(of(full_person).linked_in.as_deref(), Some("li-profile"));
    assert_eq!(of(bare_person).linked_in, None);
    let read = same!(deals, deals::Column::Id);
    let of = |id: Uuid| read.iter().find(|m| m.id == id).unwrap();
    assert!(of(full_deal).expected_close_date.is_some());
    assert!(of(bare_deal).expected_close_date.is_none());
    assert_eq!(of(full_deal).amount, Some(1234.5));
    let read = same!(activities, activities::Column::Id);
    assert!(read.iter().any(|a| a.deal_id == Some(full_deal)));
    assert!(
        read.iter()
            .any(|a| a.deal_id.is_none() && a.author_id.is_none())
    );
    let read = same!(signals, signals::Column::Id);
    assert!(
        read.iter()
            .any(|s| s.anonymous_id.as_deref() == Some("anon"))
    );
    assert!(
        read.iter()
            .any(|s| s.anonymous_id.is_none() && s.contact_id.is_none())
    );

    // Joined: an account with its score, with a score of NULLs and with none at all.
    let q = || {
        companies::Entity::find()
            .join(JoinType::LeftJoin, domain::scoring::score_of_account())
            .select_also(account_scores::Entity)
            .order_by_asc(companies::Column::Id)
    };
    let derived = q().all(db).await.unwrap();
    let positional = rows::all_also(db, q()).await.unwrap();
    assert_eq!(positional, derived);
    let scored = |id: Uuid| {
        positional
            .iter()
            .find(|(c, _)| c.id == id)
            .unwrap()
            .1
            .is_some()
    };
    assert!(scored(full_co) && scored(bare_co) && !scored(unscored_co));
    // A score with its account (`topAccounts`).
    let q = || {
        account_scores::Entity::find()
            .join(
                JoinType::InnerJoin,
                domain::scoring::score_of_account().rev(),
            )
            .select_also(companies::Entity)
            .order_by_asc(account_scores::Column::AccountId)
    };
    let derived = q().all(db).await.unwrap();
    assert!(derived.len() >= 2 && derived.iter().all(|(_, c)| c.is_some()));
    assert_eq!(rows::all_also(db, q()).await.unwrap(), derived);

    // An API key with its creator's membership (every API request reads one), and without.
    let creator: sea_orm::RelationDef = api_keys::Entity::belongs_to(memberships::Entity)
        .from(api_keys::Column::CreatedBy)
        .to(memberships::Column::UserId)
        .into();
    let q = || {
        api_keys::Entity::find()
            .join(JoinType::LeftJoin, creator.clone())
            .select_also(memberships::Entity)
            .order_by_asc(api_keys::Column::Id)
    };
    let operator_key = api_keys::ActiveModel {
        id: Set(id()),
        organization_id: Set(org),
        created_by: Set(None),
        name: Set("operator".into()),
        prefix: Set("dsk_op".into()),
        key_hash: Set("hash".into()),
        scopes: Set(json!(["accounts:read"])),
        created_at: Set(at(17)),
        last_used_at: Set(Some(at(18))),
        expires_at: Set(Some(at(-3600))),
        revoked_at: Set(Some(at(19))),
    };
    api_keys::Entity::insert(operator_key)
        .exec(db)
        .await
        .unwrap();
    let derived = q().all(db).await.unwrap();
    assert!(derived.iter().any(|(_, m)| m.is_some()) && derived.iter().any(|(_, m)| m.is_none()));
    assert_eq!(rows::all_also(db, q()).await.unwrap(), derived);

    // Nested: an account's contacts and activities, a contact's deals.
    let actor = Actor {
        organization_id: org,
        role: Role::Owner,
        principal: Principal::User {
            user_id: user,
            session_id: Uuid::now_v7(),
        },
    };
    let contact_columns = domain::crm::ChildColumns {
        organization: contacts::Column::OrganizationId,
        parent: contacts::Column::AccountId,
        id: contacts::Column::Id,
        read_scope: "contacts:read",
    };
    let activity_columns = domain::crm::ChildColumns {
        organization: activities::Column::OrganizationId,
        parent: activities::Column::AccountId,
        id: activities::Column::Id,
        read_scope: "activities:read",
    };
    let deal_columns = domain::crm::ChildColumns {
        organization: deals::Column::OrganizationId,
        parent: deals::Column::ContactId,
        id: deals::Column::Id,
        read_scope: "deals:read",
    };
    let nested_contacts = domain::crm::children::<contacts::Entity>(
        db,
        &actor,
        contact_columns,
        vec![full_co, bare_co],
        5,
        rows::Fields::ALL,
    )
    .await
    .unwrap();
    let mut all_contacts: Vec<contacts::Model> = contacts::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.id == full_person || c.id == bare_person)
        .collect();
    all_contacts.sort_by_key(|c| c.id);
    let mut nested_contacts = nested_contacts;
    nested_contacts.sort_by_key(|c| c.id);
    assert_eq!(nested_contacts, all_contacts);
    let nested_activities = domain::crm::children::<activities::Entity>(
        db,
        &actor,
        activity_columns,
        vec![full_co],
        5,
        rows::Fields::ALL,
    )
    .await
    .unwrap();
    let mut all_activities: Vec<activities::Model> = activities::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.account_id == Some(full_co))
        .collect();
    all_activities.sort_by_key(|a| std::cmp::Reverse(a.id));
    assert_eq!(nested_activities.len(), 2);
    let mut nested_activities = nested_activities;
    nested_activities.sort_by_key(|a| std::cmp::Reverse(a.id));
    assert_eq!(nested_activities, all_activities);
    let nested_deals = domain::crm::children::<deals::Entity>(
        db,
        &actor,
        deal_columns,
        vec![full_person],
        5,
        rows::Fields::ALL,
    )
    .await
    .unwrap();
    let full = deals::Entity::find_by_id(full_deal)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(nested_deals, std::slice::from_ref(&full));

    // Each column read alone (with the id, organization and parent every row carries) equals
    // the full read; a column not asked for is not read.
    let parents = vec![full_co, bare_co];
    pruned_reads_keep_their_columns::<contacts::Entity>(
        db,
        &actor,
        contact_columns,
        &parents,
        &all_contacts,
    )
    .await;
    pruned_reads_keep_their_columns::<activities::Entity>(
        db,
        &actor,
        activity_columns,
        &[full_co],
        &all_activities,
    )
    .await;
    pruned_reads_keep_their_columns::<deals::Entity>(
        db,
        &actor,
        deal_columns,
        &[full_person],
        &[full],
    )
    .await;
    let bare = domain::crm::children::<contacts::Entity>(
        db,
        &actor,
        contact_columns,
        parents,
        5,
        rows::Fields::NONE,
    )
    .await
    .unwrap();
    let full_contact = all_contacts.iter().find(|c| c.id == full_person).unwrap();
    let pruned = bare.iter().find(|c| c.id == full_person).unwrap();
    assert!(full_contact.email.is_some() && full_contact.created_at != DateTime::<Utc>::default());
    assert_eq!(
        (pruned.organization_id, pruned.account_id),
        (full_contact.organization_id, full_contact.account_id)
    );
    assert_eq!(
        (pruned.email.as_deref(), pruned.created_at),
        (None, DateTime::<Utc>::default())
    );
}

/// [`domain::crm::children`] keeping one column at a time: each row's kept columns equal
/// `full`'s.
async fn pruned_reads_keep_their_columns<E>(
    db: &sea_orm::DatabaseConnection,
    actor: &Actor,
    columns: domain::crm::ChildColumns<E::Column>,
    parents: &[Uuid],
    full: &[E::Model],
) where
    E: EntityTrait,
    E::Model: rows::Positional + Send + Sync,
{
    use sea_orm::{IdenStatic, Iterable, ModelTrait};
    for column in E::Column::iter() {
        let read = domain::crm::children::<E>(
            db,
            actor,
            columns,
            parents.to_vec(),
            5,
            rows::Fields::of::<E>(&[column]),
        )
        .await
        .unwrap();
        assert_eq!(read.len(), full.len(), "{}", column.as_str());
        for row in &read {
            let id = row.get(columns.id);
            let whole = full.iter().find(|f| f.get(columns.id) == id).unwrap();
            for c in [column, columns.organization, columns.parent, columns.id] {
                assert_eq!(
                    row.get(c),
                    whole.get(c),
                    "{} keeping {}",
                    c.as_str(),
                    column.as_str()
                );
            }
        }
    }
}

/// Times read by position keep every microsecond, before PostgreSQL's epoch (2000) and the Unix
/// epoch as well as after (PostgreSQL's binary form is read without sqlx's decoder), and a NULL
/// time is `None`.
#[tokio::test]
async fn positional_times_keep_microseconds_on_both_sides_of_the_epochs() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let app = spawn_app_with(&[]).await;
    let db = &app.db;
    let times = [
        "1969-07-20T20:17:40.000001Z",
        "1999-12-31T23:59:59.999999Z",
        "2000-01-01T00:00:00Z",
        "2026-12-06T17:45:12.345678Z",
    ];
    let backend = db.get_database_backend();
    let columns: Vec<String> = times
        .iter()
        .map(|t| match backend {
            DbBackend::Postgres => format!("'{t}'::timestamptz"),
            _ => format!("'{t}'"),
        })
        .chain(std::iter::once(match backend {
            DbBackend::Postgres => "NULL::timestamptz".to_owned(),
            _ => "NULL".to_owned(),
        }))
        .collect();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT {}", columns.join(", ")),
        ))
        .await
        .unwrap()
        .unwrap();
    for (i, t) in times.iter().enumerate() {
        let want = DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        let got: DateTime<Utc> = rows::Cell::cell(&row, i).unwrap();
        assert_eq!(got, want, "column {i}");
        let got: Option<DateTime<Utc>> = rows::Cell::cell(&row, i).unwrap();
        assert_eq!(got, Some(want), "column {i} as an option");
    }
    let null: Option<DateTime<Utc>> = rows::Cell::cell(&row, times.len()).unwrap();
    assert_eq!(null, None);
    let refused: Result<DateTime<Utc>, _> = rows::Cell::cell(&row, times.len());
    assert!(
        refused.is_err(),
        "a NULL time where one is required is an error"
    );
}
