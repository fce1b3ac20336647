//! Writes that need no answer but their row count, sent together: on PostgreSQL as the
//! data-modifying parts of one `WITH` statement (one round trip for all of them), elsewhere one
//! by one as they come (SQLite runs in-process: a round trip costs nothing there).

use sea_orm::sea_query::{Alias, CommonTableExpression, Expr, InsertStatement, Query, WithClause};
use sea_orm::{ConnectionTrait, DbBackend, DbErr};

/// The largest insert carried, in bind parameters (counted at its rows' full width): about a
/// hundred signals.
pub const CARRIED_PARAMS: usize = 1_500;

/// What to do with a carried write's row count once it is known.
type Then = Box<dyn FnOnce(u64) + Send>;

/// Inserts collected in a transaction and sent at [`Carried::send`]. What a caller learns of
/// each is its row count, given to the `then` it pushed the insert with. A PostgreSQL statement
/// sees the database as it was before the statement began, so nothing carried may need to read
/// what another carried insert writes (a foreign key checked at the end of the statement is
/// fine: the rows are there by then).
#[must_use = "carried writes are sent only by `send`"]
pub struct Carried {
    backend: DbBackend,
    parts: Vec<(InsertStatement, Option<Then>)>,
    /// Bind parameters the held parts may carry, counted at their rows' full width.
    params: usize,
}

impl Carried {
    pub fn new(db: &impl ConnectionTrait) -> Self {
        Carried {
            backend: db.get_database_backend(),
            parts: Vec::new(),
            params: 0,
        }
    }

    /// Adds an insert of `rows` rows of `E`, and what to do with how many it wrote. Off
    /// PostgreSQL it runs now, and so does a large insert (over [`CARRIED_PARAMS`], after what
    /// is held): one round trip is little beside its cost, and on its own its text repeats from
    /// batch to batch, so the connection's prepared statement serves it again instead of
    /// PostgreSQL parsing a new combination each time. Parts that would pass
    /// [`super::MAX_PARAMS`] together are sent before this one is held.
    pub async fn push<E: sea_orm::EntityTrait>(
        &mut self,
        db: &impl ConnectionTrait,
        insert: InsertStatement,
        rows: usize,
        then: Option<Then>,
    ) -> Result<(), DbErr> {
        use sea_orm::Iterable;
        let params = rows * E::Column::iter().count();
        if self.backend != DbBackend::Postgres || params > CARRIED_PARAMS {
            // What was held goes first: the writes keep the order they were pushed in.
            self.flush(db).await?;
            let n = db.execute(&insert).await?.rows_affected();
            if let Some(then) = then {
                then(n);
            }
            return Ok(());
        }
        if self.params + params > super::MAX_PARAMS {
            self.flush(db).await?;
        }
        self.params += params;
        self.parts.push((insert, then));
        Ok(())
    }

    /// Sends every held part (on PostgreSQL: one statement) and hands each its row count.
    pub async fn send(mut self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        self.flush(db).await
    }

    /// Sends what is held so far (before a statement that must come after it), and goes on
    /// carrying.
    pub async fn flush(&mut self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        let mut parts = std::mem::take(&mut self.parts);
        self.params = 0;
        if parts.len() <= 1 {
            if let Some((insert, then)) = parts.pop() {
                let n = db.execute(&insert).await?.rows_affected();
                if let Some(then) = then {
                    then(n);
                }
            }
            return Ok(());
        }
        // WITH w0 AS (INSERT … RETURNING 1), w1 AS (…) SELECT (SELECT COUNT(*) FROM w0) AS w0, …
        let mut with = WithClause::new();
        let mut counts = Query::select();
        let mut thens = Vec::with_capacity(parts.len());
        for (i, (mut insert, then)) in parts.into_iter().enumerate() {
            let name = format!("w{i}");
            insert.returning(Query::returning().expr(Expr::cust("1")));
            with.cte(
                CommonTableExpression::new()
                    .query(insert)
                    .table_name(Alias::new(&name))
                    .to_owned(),
            );
            counts.expr_as(
                Expr::cust(format!("(SELECT COUNT(*) FROM {name})")),
                Alias::new(&name),
            );
            thens.push((name, then));
        }
        let row = db
            .query_one(&with.query(counts))
            .await?
            .ok_or_else(|| DbErr::Custom("carried writes: no counts returned".into()))?;
        for (name, then) in thens {
            let n = row.try_get::<i64>("", &name)?;
            if let Some(then) = then {
                then(u64::try_from(n).unwrap_or(0));
            }
        }
        Ok(())
    }
}
