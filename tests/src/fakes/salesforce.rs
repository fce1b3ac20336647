//! A fake Salesforce org: its OAuth token endpoint and enough of the REST API for CRM sync.
//!
//! - `POST /services/oauth2/token` (form): `authorization_code` (the code set with
//!   [`FakeSalesforce::with`]) answers `access_token`, `refresh_token`, `instance_url` (this
//!   server), `id`, `issued_at`, `signature`, `token_type`; `refresh_token` answers the same
//!   without a refresh token (as Salesforce does). A wrong client is 400 `invalid_client`; a
//!   revoked grant or an unknown refresh token is 400 `invalid_grant` "expired access/refresh
//!   token".
//! - Under `/services/data/vNN.N/`, with `Authorization: Bearer <the current access token>`
//!   (else 401 `INVALID_SESSION_ID`):
//!   - `GET query?q=<SOQL>` and `GET tooling/query?q=<SOQL>`: `SELECT f, … FROM Obj [WHERE …]
//!     [ORDER BY f [ASC|DESC], …]` with `=`, `!=`, `<`, `<=`, `>`, `>=`, `IN (…)`, `LIKE`
//!     (`%`, `_`, backslash escapes), `AND`, `OR`, parentheses, string/number/null/datetime
//!     literals; an unknown column is 400 `INVALID_FIELD` "No such column"; a malformed
//!     statement 400 `MALFORMED_QUERY`. Answers `totalSize`, `done`, `records` (with
//!     `attributes`) and, when more remain, `nextRecordsUrl` `/services/data/vNN.N/query/01g…-N`
//!     (`GET` it for the next page); the page size is [`Data::page_size`].
//!   - `POST composite/sobjects` (create) and `PATCH composite/sobjects` (update, records with
//!     `id`), at most 200 records, `allOrNone`; answers one SaveResult per record, in order.
//!     Per-record errors: a missing required field (`REQUIRED_FIELD_MISSING`), a value in
//!     [`Data::refuse`] (`FIELD_CUSTOM_VALIDATION_EXCEPTION`, default "REFUSE ME"), an update
//!     of a deleted record (`ENTITY_IS_DELETED`) or an unknown id
//!     (`INVALID_CROSS_REFERENCE_KEY`). A field the object does not have (a custom field not
//!     created yet) fails the whole call: 400 `INVALID_FIELD`. Every write bumps
//!     `LastModifiedDate`.
//!   - `POST tooling/sobjects/CustomField` `{FullName: "Obj.Name__c", Metadata: {label, type,
//!     …}}`: 201, or 400 `DUPLICATE_VALUE` when it exists; the field is then queryable and
//!     writable.
//! - Every data answer carries `Sforce-Limit-Info: api-usage=<used>/<max>`; with
//!   [`Data::limit_exceeded`] (or once [`Data::limit_after`] more calls were answered) every
//!   data call is 403 `REQUEST_LIMIT_EXCEEDED`.
//! - Every request is recorded ([`Hit`]); chosen requests can answer a status ([`Data::fail`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The JSON body, or a form body as an object.
    pub body: Value,
    pub status: u16,
    pub authorization: Option<String>,
}

impl Hit {
    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The SOQL of a query request.
    pub fn soql(&self) -> Option<String> {
        self.param("q")
    }

    /// The records of a composite call.
    pub fn records(&self) -> Vec<Value> {
        self.body["records"].as_array().cloned().unwrap_or_default()
    }
}

/// A record of the org.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub object: String,
    pub fields: Map<String, Value>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub deleted: bool,
}

/// A custom field created through the Tooling API (or set up by a test).
#[derive(Debug, Clone)]
pub struct CustomField {
    pub id: String,
    pub object: String,
    /// `DevSignal_Score` (no `__c`).
    pub developer_name: String,
    pub metadata: Value,
}

pub struct Data {
    pub records: Vec<Record>,
    pub custom_fields: Vec<CustomField>,
    pub client_id: String,
    pub client_secret: String,
    /// The authorization code the token endpoint accepts.
    pub code: String,
    pub access_token: String,
    pub refresh_token: String,
    /// The user revoked the app: refreshes answer `invalid_grant`.
    pub revoked: bool,
    pub page_size: usize,
    /// Values that make a record fail validation.
    pub refuse: Vec<String>,
    pub limit_exceeded: bool,
    /// After this many more answered data calls, the limit is exceeded.
    pub limit_after: Option<usize>,
    pub api_used: u64,
    pub api_max: u64,
    /// `(part of "path?query", status)`: the next matching request answers that status.
    pub fail: Vec<(String, u16)>,
    pub hits: Vec<Hit>,
    pub tokens_issued: u32,
    next_id: u64,
    /// Query locators: the rows of a query still to be read.
    locators: BTreeMap<String, (Vec<Value>, usize, usize)>,
}

#[derive(Clone)]
pub struct FakeSalesforce {
    pub url: String,
    pub data: Arc<Mutex<Data>>,
}

const STANDARD: &[(&str, &[&str])] = &[
    (
        "Account",
        &[
            "Id",
            "Name",
            "Website",
            "Industry",
            "Phone",
            "BillingCity",
            "BillingCountry",
            "Description",
            "OwnerId",
            "CreatedDate",
            "LastModifiedDate",
        ],
    ),
    (
        "Contact",
        &[
            "Id",
            "Email",
            "FirstName",
            "LastName",
            "Title",
            "Phone",
            "MailingCity",
            "MailingCountry",
            "AccountId",
            "OwnerId",
            "CreatedDate",
            "LastModifiedDate",
        ],
    ),
    (
        "Opportunity",
        &[
            "Id",
            "Name",
            "Amount",
            "StageName",
            "CloseDate",
            "OwnerId",
            "AccountId",
            "CreatedDate",
            "LastModifiedDate",
        ],
    ),
    (
        "CustomField",
        &["Id", "DeveloperName", "TableEnumOrId", "FullName"],
    ),
];

const REQUIRED: &[(&str, &[&str])] = &[
    ("Account", &["Name"]),
    ("Contact", &["LastName"]),
    ("Opportunity", &["Name", "StageName", "CloseDate"]),
];

fn prefix(object: &str) -> &'static str {
    match object {
        "Account" => "001",
        "Contact" => "003",
        "Opportunity" => "006",
        "CustomField" => "00N",
        _ => "a00",
    }
}

/// Salesforce's datetime form, `2026-12-01T10:00:00.000+0000`.
pub fn sf_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

fn parse_sf_time(v: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v)
        .ok()
        .or_else(|| DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
        .map(|d| d.with_timezone(&Utc))
}

impl Data {
    fn new_id(&mut self, object: &str) -> String {
        self.next_id += 1;
        format!("{}{:012}AAA", prefix(object), self.next_id)
    }

    /// The columns `object` has: its standard fields and its custom fields.
    pub fn columns(&self, object: &str) -> Option<Vec<String>> {
        let standard = STANDARD.iter().find(|(o, _)| *o == object)?.1;
        let mut cols: Vec<String> = standard.iter().map(|s| s.to_string()).collect();
        cols.extend(
            self.custom_fields
                .iter()
                .filter(|f| f.object == object)
                .map(|f| format!("{}__c", f.developer_name)),
        );
        Some(cols)
    }

    fn column(&self, object: &str, name: &str) -> Option<String> {
        self.columns(object)?
            .into_iter()
            .find(|c| c.eq_ignore_ascii_case(name))
    }

    /// A record as queried: every column, times in Salesforce's form.
    fn row(&self, r: &Record) -> Map<String, Value> {
        let mut m = Map::new();
        for c in self.columns(&r.object).unwrap_or_default() {
            let v = match c.as_str() {
                "Id" => json!(r.id),
                "CreatedDate" => json!(sf_time(r.created)),
                "LastModifiedDate" => json!(sf_time(r.modified)),
                _ => r.fields.get(&c).cloned().unwrap_or(Value::Null),
            };
            m.insert(c, v);
        }
        m
    }

    fn custom_field_rows(&self) -> Vec<Map<String, Value>> {
        self.custom_fields
            .iter()
            .map(|f| {
                let mut m = Map::new();
                m.insert("Id".into(), json!(f.id));
                m.insert("DeveloperName".into(), json!(f.developer_name));
                m.insert("TableEnumOrId".into(), json!(f.object));
                m.insert(
                    "FullName".into(),
                    json!(format!("{}.{}__c", f.object, f.developer_name)),
                );
                m
            })
            .collect()
    }
}

impl FakeSalesforce {
    /// A fake org whose current access token is `access_token`, with `refresh_token` and the
    /// OAuth client `client_id`/`client_secret`.
    pub async fn start(
        access_token: &str,
        refresh_token: &str,
        client_id: &str,
        client_secret: &str,
    ) -> FakeSalesforce {
        let data = Arc::new(Mutex::new(Data {
            records: Vec::new(),
            custom_fields: Vec::new(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            code: "sf-auth-code".into(),
            access_token: access_token.into(),
            refresh_token: refresh_token.into(),
            revoked: false,
            page_size: 2000,
            refuse: vec!["REFUSE ME".into()],
            limit_exceeded: false,
            limit_after: None,
            api_used: 0,
            api_max: 15_000,
            fail: Vec::new(),
            hits: Vec::new(),
            tokens_issued: 0,
            next_id: 0,
            locators: BTreeMap::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .fallback(handle)
            .with_state((data.clone(), url.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSalesforce { url, data }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Data) -> R) -> R {
        f(&mut self.data.lock().unwrap())
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.data.lock().unwrap().hits.clone()
    }

    pub fn clear_hits(&self) {
        self.data.lock().unwrap().hits.clear();
    }

    /// Adds a record (`Id`, `CreatedDate` and `LastModifiedDate` are set now); its id.
    pub fn add(&self, object: &str, fields: Value) -> String {
        let mut d = self.data.lock().unwrap();
        let id = d.new_id(object);
        let now = Utc::now();
        d.records.push(Record {
            id: id.clone(),
            object: object.into(),
            fields: fields.as_object().cloned().unwrap_or_default(),
            created: now,
            modified: now,
            deleted: false,
        });
        id
    }

    /// Changes fields of a record as a user would (bumping `LastModifiedDate`).
    pub fn modify(&self, id: &str, fields: Value) {
        let mut d = self.data.lock().unwrap();
        let r = d.records.iter_mut().find(|r| r.id == id).unwrap();
        for (k, v) in fields.as_object().cloned().unwrap_or_default() {
            r.fields.insert(k, v);
        }
        r.modified = Utc::now();
    }

    /// Deletes a record (to the recycle bin: updates answer `ENTITY_IS_DELETED`).
    pub fn delete(&self, id: &str) {
        let mut d = self.data.lock().unwrap();
        if let Some(r) = d.records.iter_mut().find(|r| r.id == id) {
            r.deleted = true;
            r.modified = Utc::now();
        }
    }

    pub fn get(&self, id: &str) -> Option<Record> {
        self.data
            .lock()
            .unwrap()
            .records
            .iter()
            .find(|r| r.id == id)
            .cloned()
    }

    /// The live records of `object`.
    pub fn records(&self, object: &str) -> Vec<Record> {
        self.data
            .lock()
            .unwrap()
            .records
            .iter()
            .filter(|r| r.object == object && !r.deleted)
            .cloned()
            .collect()
    }

    /// The live record of `object` whose `field` is `value` (case-insensitive).
    pub fn find(&self, object: &str, field: &str, value: &str) -> Option<Record> {
        self.records(object).into_iter().find(|r| {
            r.fields
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(value))
        })
    }

    /// Requests whose path ends with `suffix`.
    pub fn calls(&self, method: &str, suffix: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.method == method && h.path.ends_with(suffix))
            .collect()
    }

    /// The custom fields of `object` (developer names, without `__c`).
    pub fn custom_fields(&self, object: &str) -> Vec<String> {
        self.data
            .lock()
            .unwrap()
            .custom_fields
            .iter()
            .filter(|f| f.object == object)
            .map(|f| f.developer_name.clone())
            .collect()
    }

    /// Expires the current access token: the next call answers 401 until a refresh.
    pub fn expire_token(&self) {
        let mut d = self.data.lock().unwrap();
        d.tokens_issued += 1;
        d.access_token = format!("expired-rotated-{}", d.tokens_issued);
    }
}

fn sf_error(status: StatusCode, code: &str, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!([{"message": message, "errorCode": code, "fields": []}]),
    )
}

// ---------------------------------------------------------------- SOQL

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Sym(String),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut v = String::new();
            i += 1;
            loop {
                let Some(&c) = cs.get(i) else {
                    return Err("unterminated string literal".into());
                };
                if c == '\\' {
                    let Some(&e) = cs.get(i + 1) else {
                        return Err("a backslash ends the statement".into());
                    };
                    // LIKE keeps `\%` and `\_` escaped; the matcher reads them.
                    match e {
                        'n' => v.push('\n'),
                        'r' => v.push('\r'),
                        't' => v.push('\t'),
                        'b' => v.push('\u{8}'),
                        'f' => v.push('\u{c}'),
                        '\\' | '\'' | '"' => v.push(e),
                        '%' | '_' => {
                            v.push('\\');
                            v.push(e);
                        }
                        other => return Err(format!("invalid escape sequence \\{other}")),
                    }
                    i += 2;
                } else if c == '\'' {
                    i += 1;
                    break;
                } else {
                    v.push(c);
                    i += 1;
                }
            }
            out.push(Tok::Str(v));
        } else if "(),".contains(c) {
            out.push(Tok::Sym(c.to_string()));
            i += 1;
        } else if "<>=!".contains(c) {
            let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
            if ["<=", ">=", "!=", "<>"].contains(&two.as_str()) {
                out.push(Tok::Sym(two));
                i += 2;
            } else {
                out.push(Tok::Sym(c.to_string()));
                i += 1;
            }
        } else {
            let mut w = String::new();
            while i < cs.len() && !cs[i].is_whitespace() && !"(),<>=!'".contains(cs[i]) {
                w.push(cs[i]);
                i += 1;
            }
            out.push(Tok::Word(w));
        }
    }
    Ok(out)
}

#[derive(Debug, Clone)]
enum Lit {
    Null,
    Text(String),
    Num(f64),
    Time(DateTime<Utc>),
}

#[derive(Debug, Clone)]
enum Cond {
    Cmp(String, String, Lit),
    In(String, bool, Vec<Lit>),
    Like(String, String),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

struct Query {
    fields: Vec<String>,
    object: String,
    cond: Option<Cond>,
    order: Vec<(String, bool)>,
    limit: Option<usize>,
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn keyword(&mut self, k: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect_keyword(&mut self, k: &str) -> Result<(), String> {
        if self.keyword(k) {
            Ok(())
        } else {
            Err(format!("expected {k} at {:?}", self.peek()))
        }
    }
    fn sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(x)) if x == s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn word(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Word(w)) => Ok(w),
            other => Err(format!("expected a name, found {other:?}")),
        }
    }
    fn literal(&mut self) -> Result<Lit, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Text(s)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Lit::Null),
            Some(Tok::Word(w)) => {
                if let Ok(n) = w.parse::<f64>() {
                    Ok(Lit::Num(n))
                } else if let Ok(t) = DateTime::parse_from_rfc3339(&w) {
                    Ok(Lit::Time(t.with_timezone(&Utc)))
                } else if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") {
                    Ok(Lit::Text(w.to_lowercase()))
                } else {
                    Err(format!(
                        "unexpected token {w} (datetimes are 2026-01-01T00:00:00Z)"
                    ))
                }
            }
            other => Err(format!("expected a value, found {other:?}")),
        }
    }
    fn or(&mut self) -> Result<Cond, String> {
        let mut c = self.and()?;
        while self.keyword("OR") {
            c = Cond::Or(Box::new(c), Box::new(self.and()?));
        }
        Ok(c)
    }
    fn and(&mut self) -> Result<Cond, String> {
        let mut c = self.atom()?;
        while self.keyword("AND") {
            c = Cond::And(Box::new(c), Box::new(self.atom()?));
        }
        Ok(c)
    }
    fn atom(&mut self) -> Result<Cond, String> {
        if self.sym("(") {
            let c = self.or()?;
            if !self.sym(")") {
                return Err("expected )".into());
            }
            return Ok(c);
        }
        let field = self.word()?;
        let negated = self.keyword("NOT");
        if self.keyword("IN") {
            if !self.sym("(") {
                return Err("expected ( after IN".into());
            }
            let mut values = vec![self.literal()?];
            while self.sym(",") {
                values.push(self.literal()?);
            }
            if !self.sym(")") {
                return Err("expected ) after the IN list".into());
            }
            return Ok(Cond::In(field, negated, values));
        }
        if negated {
            return Err("NOT is only supported before IN".into());
        }
        if self.keyword("LIKE") {
            return match self.next() {
                Some(Tok::Str(p)) => Ok(Cond::Like(field, p)),
                other => Err(format!("LIKE takes a string, found {other:?}")),
            };
        }
        let op = match self.next() {
            Some(Tok::Sym(s)) if ["=", "!=", "<>", "<", "<=", ">", ">="].contains(&s.as_str()) => s,
            other => return Err(format!("expected an operator, found {other:?}")),
        };
        Ok(Cond::Cmp(field, op, self.literal()?))
    }
}

fn parse(soql: &str) -> Result<Query, String> {
    let mut p = Parser {
        toks: tokenize(soql)?,
        pos: 0,
    };
    p.expect_keyword("SELECT")?;
    let mut fields = vec![p.word()?];
    while p.sym(",") {
        fields.push(p.word()?);
    }
    p.expect_keyword("FROM")?;
    let object = p.word()?;
    let cond = if p.keyword("WHERE") {
        Some(p.or()?)
    } else {
        None
    };
    let mut order = Vec::new();
    if p.keyword("ORDER") {
        p.expect_keyword("BY")?;
        loop {
            let f = p.word()?;
            let desc = if p.keyword("DESC") {
                true
            } else {
                p.keyword("ASC");
                false
            };
            order.push((f, desc));
            if !p.sym(",") {
                break;
            }
        }
    }
    let limit = if p.keyword("LIMIT") {
        Some(
            p.word()?
                .parse::<usize>()
                .map_err(|_| "LIMIT takes a number".to_string())?,
        )
    } else {
        None
    };
    if let Some(t) = p.peek() {
        return Err(format!("unexpected token {t:?}"));
    }
    Ok(Query {
        fields,
        object,
        cond,
        order,
        limit,
    })
}

fn value_lit(v: &Value) -> Lit {
    match v {
        Value::Null => Lit::Null,
        Value::Number(n) => Lit::Num(n.as_f64().unwrap_or(0.0)),
        Value::Bool(b) => Lit::Text(b.to_string()),
        Value::String(s) => match parse_sf_time(s) {
            Some(t) if s.len() >= 20 => Lit::Time(t),
            _ => Lit::Text(s.clone()),
        },
        other => Lit::Text(other.to_string()),
    }
}

/// Compares like SOQL: text case-insensitively, null below everything.
fn compare(a: &Lit, b: &Lit) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Lit::Null, Lit::Null) => Some(std::cmp::Ordering::Equal),
        (Lit::Null, _) => Some(std::cmp::Ordering::Less),
        (_, Lit::Null) => Some(std::cmp::Ordering::Greater),
        (Lit::Num(x), Lit::Num(y)) => x.partial_cmp(y),
        (Lit::Time(x), Lit::Time(y)) => Some(x.cmp(y)),
        (Lit::Text(x), Lit::Text(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Lit::Time(x), Lit::Text(y)) => parse_sf_time(y).map(|y| x.cmp(&y)),
        (Lit::Text(x), Lit::Time(y)) => parse_sf_time(x).map(|x| x.cmp(y)),
        _ => None,
    }
}

/// SOQL `LIKE`: `%` any run, `_` one character, `\%`/`\_` themselves; case-insensitive.
fn like(value: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy)]
    enum P {
        Any,
        One,
        Ch(char),
    }
    let mut ps = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        ps.push(match c {
            '\\' => P::Ch(it.next().unwrap_or('\\')),
            '%' => P::Any,
            '_' => P::One,
            c => P::Ch(c),
        });
    }
    let v: Vec<char> = value.to_lowercase().chars().collect();
    fn m(v: &[char], p: &[P]) -> bool {
        match p.first() {
            None => v.is_empty(),
            Some(P::Any) => (0..=v.len()).any(|i| m(&v[i..], &p[1..])),
            Some(P::One) => !v.is_empty() && m(&v[1..], &p[1..]),
            Some(P::Ch(c)) => {
                v.first()
                    .is_some_and(|x| c.to_lowercase().eq(x.to_lowercase()))
                    && m(&v[1..], &p[1..])
            }
        }
    }
    m(&v, &ps)
}

fn eval(c: &Cond, row: &Map<String, Value>) -> bool {
    let get = |f: &str| {
        row.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(f))
            .map(|(_, v)| value_lit(v))
            .unwrap_or(Lit::Null)
    };
    match c {
        Cond::And(a, b) => eval(a, row) && eval(b, row),
        Cond::Or(a, b) => eval(a, row) || eval(b, row),
        Cond::Like(f, p) => match get(f) {
            Lit::Text(v) => like(&v, p),
            _ => false,
        },
        Cond::In(f, negated, values) => {
            let v = get(f);
            let found = values
                .iter()
                .any(|x| compare(&v, x) == Some(std::cmp::Ordering::Equal));
            found != *negated
        }
        Cond::Cmp(f, op, lit) => {
            let v = get(f);
            use std::cmp::Ordering::*;
            let o = compare(&v, lit);
            let null_involved = matches!(v, Lit::Null) || matches!(lit, Lit::Null);
            match op.as_str() {
                "=" => o == Some(Equal),
                "!=" | "<>" => o.is_some_and(|o| o != Equal),
                _ if null_involved => false,
                "<" => o == Some(Less),
                "<=" => matches!(o, Some(Less | Equal)),
                ">" => o == Some(Greater),
                ">=" => matches!(o, Some(Greater | Equal)),
                _ => false,
            }
        }
    }
}

fn cond_fields(c: &Cond, out: &mut Vec<String>) {
    match c {
        Cond::And(a, b) | Cond::Or(a, b) => {
            cond_fields(a, out);
            cond_fields(b, out);
        }
        Cond::Cmp(f, _, _) | Cond::In(f, _, _) | Cond::Like(f, _) => out.push(f.clone()),
    }
}

/// Runs a query: the selected rows, ordered, with `attributes`.
fn run_query(d: &Data, soql: &str, tooling: bool) -> Result<Vec<Value>, (StatusCode, Value)> {
    let q = parse(soql).map_err(|e| sf_error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", &e))?;
    let object = STANDARD
        .iter()
        .map(|(o, _)| *o)
        .find(|o| o.eq_ignore_ascii_case(&q.object))
        .filter(|o| (*o == "CustomField") == tooling)
        .ok_or_else(|| {
            sf_error(
                StatusCode::BAD_REQUEST,
                "INVALID_TYPE",
                &format!("sObject type '{}' is not supported.", q.object),
            )
        })?;
    let mut named = q.fields.clone();
    if let Some(c) = &q.cond {
        cond_fields(c, &mut named);
    }
    named.extend(q.order.iter().map(|(f, _)| f.clone()));
    for f in &named {
        if d.column(object, f).is_none() {
            return Err(sf_error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                &format!("No such column '{f}' on entity '{object}'."),
            ));
        }
    }
    let mut rows: Vec<Map<String, Value>> = if object == "CustomField" {
        d.custom_field_rows()
    } else {
        d.records
            .iter()
            .filter(|r| r.object == object && !r.deleted)
            .map(|r| d.row(r))
            .collect()
    };
    if let Some(c) = &q.cond {
        rows.retain(|r| eval(c, r));
    }
    rows.sort_by(|a, b| {
        for (f, desc) in &q.order {
            let col = d.column(object, f).unwrap_or_default();
            let x = value_lit(a.get(&col).unwrap_or(&Value::Null));
            let y = value_lit(b.get(&col).unwrap_or(&Value::Null));
            let o = compare(&x, &y).unwrap_or(std::cmp::Ordering::Equal);
            let o = if *desc { o.reverse() } else { o };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    if let Some(l) = q.limit {
        rows.truncate(l);
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut out = Map::new();
            let id = r.get("Id").cloned().unwrap_or(Value::Null);
            out.insert(
                "attributes".into(),
                json!({"type": object, "url": format!("/services/data/v60.0/sobjects/{object}/{}", id.as_str().unwrap_or(""))}),
            );
            for f in &q.fields {
                let col = d.column(object, f).unwrap_or_default();
                out.insert(col.clone(), r.get(&col).cloned().unwrap_or(Value::Null));
            }
            Value::Object(out)
        })
        .collect())
}

/// One page of `rows` (the rows after the `read` already answered, of `total`); the rest is
/// kept under a query locator named in `nextRecordsUrl`.
fn query_answer(
    d: &mut Data,
    version: &str,
    mut rows: Vec<Value>,
    read: usize,
    total: usize,
) -> Value {
    let page = d.page_size.max(1);
    let rest = if rows.len() > page {
        rows.split_off(page)
    } else {
        Vec::new()
    };
    let done = rest.is_empty();
    let read = read + rows.len();
    let mut answer = json!({"totalSize": total, "done": done, "records": rows});
    if !done {
        d.next_id += 1;
        let locator = format!("01g{:012}AAA-{read}", d.next_id);
        d.locators.insert(locator.clone(), (rest, read, total));
        answer["nextRecordsUrl"] = json!(format!("/services/data/{version}/query/{locator}"));
    }
    answer
}

// ------------------------------------------------------------ writes

fn save_error(code: &str, message: &str, fields: &[&str]) -> Value {
    json!({"success": false, "errors": [{"statusCode": code, "message": message, "fields": fields}]})
}

fn composite(d: &mut Data, patch: bool, body: &Value) -> (StatusCode, Value) {
    let Some(records) = body["records"].as_array() else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "records is required",
        );
    };
    if records.len() > 200 {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        );
    }
    let all_or_none = body["allOrNone"].as_bool().unwrap_or(false);
    // A column the object lacks fails the whole request, before anything is written.
    for r in records {
        let Some(object) = r["attributes"]["type"].as_str() else {
            return sf_error(
                StatusCode::BAD_REQUEST,
                "INVALID_TYPE",
                "Each record must have attributes.type",
            );
        };
        let Some(cols) = d.columns(object).filter(|_| object != "CustomField") else {
            return sf_error(
                StatusCode::BAD_REQUEST,
                "INVALID_TYPE",
                &format!("sObject type '{object}' is not supported."),
            );
        };
        for k in r
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if k == "attributes" || (patch && k == "id") {
                continue;
            }
            if !cols.contains(&k) || ["Id", "CreatedDate", "LastModifiedDate"].contains(&k.as_str())
            {
                return sf_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELD",
                    &format!("No such column '{k}' on sobject of type {object}"),
                );
            }
        }
    }
    let now = Utc::now();
    let mut results = Vec::new();
    let mut writes: Vec<(Option<usize>, Record)> = Vec::new();
    for r in records {
        let object = r["attributes"]["type"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut fields: Map<String, Value> = r.as_object().cloned().unwrap_or_default();
        fields.remove("attributes");
        let id = fields.remove("id");
        if fields
            .values()
            .any(|v| v.as_str().is_some_and(|s| d.refuse.iter().any(|x| x == s)))
        {
            results.push(save_error(
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "This record was refused by a validation rule",
                &[],
            ));
            continue;
        }
        if patch {
            let Some(id) = id.as_ref().and_then(Value::as_str) else {
                results.push(save_error(
                    "MISSING_ARGUMENT",
                    "Id not specified in an update call",
                    &[],
                ));
                continue;
            };
            let Some(i) = d
                .records
                .iter()
                .position(|x| x.id == id && x.object == object)
            else {
                results.push(save_error(
                    "INVALID_CROSS_REFERENCE_KEY",
                    "invalid cross reference id",
                    &[],
                ));
                continue;
            };
            if d.records[i].deleted {
                results.push(save_error("ENTITY_IS_DELETED", "entity is deleted", &[]));
                continue;
            }
            let mut rec = d.records[i].clone();
            for (k, v) in fields {
                rec.fields.insert(k, v);
            }
            rec.modified = now;
            results.push(json!({"id": id, "success": true, "errors": []}));
            writes.push((Some(i), rec));
        } else {
            if id.is_some() {
                results.push(save_error(
                    "INVALID_FIELD",
                    "cannot specify Id in an insert call",
                    &["Id"],
                ));
                continue;
            }
            let required = REQUIRED
                .iter()
                .find(|(o, _)| *o == object)
                .map(|(_, f)| *f)
                .unwrap_or(&[]);
            let missing: Vec<&str> = required
                .iter()
                .filter(|f| fields.get(**f).is_none_or(|v| v.is_null() || v == ""))
                .copied()
                .collect();
            if !missing.is_empty() {
                results.push(save_error(
                    "REQUIRED_FIELD_MISSING",
                    &format!("Required fields are missing: [{}]", missing.join(", ")),
                    &missing,
                ));
                continue;
            }
            let id = d.new_id(&object);
            results.push(json!({"id": id, "success": true, "errors": []}));
            writes.push((
                None,
                Record {
                    id,
                    object,
                    fields,
                    created: now,
                    modified: now,
                    deleted: false,
                },
            ));
        }
    }
    let failed = results.iter().any(|r| r["success"] == false);
    if all_or_none && failed {
        let results = results
            .into_iter()
            .map(|r| {
                if r["success"] == true {
                    save_error(
                        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                        "Record rolled back because not all records were valid and the request was using AllOrNone header",
                        &[],
                    )
                } else {
                    r
                }
            })
            .collect::<Vec<_>>();
        return (StatusCode::OK, json!(results));
    }
    for (i, rec) in writes {
        match i {
            Some(i) => d.records[i] = rec,
            None => d.records.push(rec),
        }
    }
    (StatusCode::OK, json!(results))
}

fn create_custom_field(d: &mut Data, body: &Value) -> (StatusCode, Value) {
    let full = body["FullName"].as_str().unwrap_or_default();
    let Some((object, name)) = full.split_once('.') else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            "FullName must be Object.Field__c",
        );
    };
    let Some(dev) = name.strip_suffix("__c").filter(|n| !n.is_empty()) else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            "A custom field's name ends with __c",
        );
    };
    if !["Account", "Contact", "Opportunity"].contains(&object) {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE",
            &format!("Cannot add a custom field to {object}"),
        );
    }
    let m = &body["Metadata"];
    let valid = m["label"].as_str().is_some_and(|l| !l.is_empty())
        && match m["type"].as_str() {
            Some("Number") => m["precision"].as_u64().is_some() && m["scale"].as_u64().is_some(),
            Some("Text") => m["length"].as_u64().is_some_and(|l| (1..=255).contains(&l)),
            Some("DateTime") | Some("Date") | Some("Checkbox") => true,
            _ => false,
        };
    if !valid {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "FIELD_INTEGRITY_EXCEPTION",
            "Metadata needs a label and a supported type with its length or precision and scale",
        );
    }
    if d.custom_fields
        .iter()
        .any(|f| f.object == object && f.developer_name.eq_ignore_ascii_case(dev))
    {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "DUPLICATE_VALUE",
            "duplicate value found: <unknown> duplicates value on record with id: <unknown>",
        );
    }
    let id = d.new_id("CustomField");
    d.custom_fields.push(CustomField {
        id: id.clone(),
        object: object.into(),
        developer_name: dev.into(),
        metadata: m.clone(),
    });
    (
        StatusCode::CREATED,
        json!({"id": id, "success": true, "errors": [], "warnings": [], "infos": []}),
    )
}

fn token(d: &mut Data, base: &str, form: &BTreeMap<String, String>) -> (StatusCode, Value) {
    let bad = |e: &str, desc: &str| {
        (
            StatusCode::BAD_REQUEST,
            json!({"error": e, "error_description": desc}),
        )
    };
    if form.get("client_id") != Some(&d.client_id)
        || form.get("client_secret") != Some(&d.client_secret)
    {
        return bad("invalid_client", "invalid client credentials");
    }
    let with_refresh = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            if form.get("code") != Some(&d.code) || d.revoked {
                return bad("invalid_grant", "authentication failure");
            }
            true
        }
        Some("refresh_token") => {
            if d.revoked || form.get("refresh_token") != Some(&d.refresh_token) {
                return bad("invalid_grant", "expired access/refresh token");
            }
            false
        }
        _ => return bad("unsupported_grant_type", "grant type not supported"),
    };
    d.tokens_issued += 1;
    d.access_token = format!("00Dfake!token{}", d.tokens_issued);
    let mut answer = json!({
        "access_token": d.access_token,
        "signature": "c2lnbmF0dXJl",
        "scope": "refresh_token api",
        "instance_url": base,
        "id": format!("{base}/id/00D000000000001AAA/005000000000001AAA"),
        "token_type": "Bearer",
        "issued_at": Utc::now().timestamp_millis().to_string(),
    });
    if with_refresh {
        answer["refresh_token"] = json!(d.refresh_token);
    }
    (StatusCode::OK, answer)
}

type FakeState = (Arc<Mutex<Data>>, String);

async fn handle(
    State((data, base)): State<FakeState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let json_body: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
        if form.is_empty() {
            Value::Null
        } else {
            json!(form)
        }
    });
    let mut d = data.lock().unwrap();
    let target = format!("{path}?{query}");
    let mut out = HeaderMap::new();
    out.insert("content-type", HeaderValue::from_static("application/json"));
    let data_api = path.strip_prefix("/services/data/").and_then(|rest| {
        let (version, rest) = rest.split_once('/')?;
        (version.starts_with('v') && version[1..].parse::<f32>().is_ok())
            .then(|| (version.to_owned(), rest.to_owned()))
    });
    let (status, answer) = if let Some(i) = d.fail.iter().position(|(t, _)| target.contains(t)) {
        let (_, code) = d.fail.remove(i);
        sf_error(
            StatusCode::from_u16(code).unwrap(),
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact support",
        )
    } else if path == "/services/oauth2/token" && method == Method::POST {
        token(&mut d, &base, &form)
    } else if let Some((version, rest)) = data_api {
        if authorization.as_deref() != Some(&format!("Bearer {}", d.access_token)) {
            sf_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
            )
        } else if d.limit_exceeded {
            out.insert(
                "sforce-limit-info",
                HeaderValue::from_str(&format!("api-usage={}/{}", d.api_max, d.api_max)).unwrap(),
            );
            sf_error(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            )
        } else {
            d.api_used += 1;
            if let Some(n) = d.limit_after {
                if n <= 1 {
                    d.limit_after = None;
                    d.limit_exceeded = true;
                } else {
                    d.limit_after = Some(n - 1);
                }
            }
            out.insert(
                "sforce-limit-info",
                HeaderValue::from_str(&format!("api-usage={}/{}", d.api_used, d.api_max)).unwrap(),
            );
            let q = url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.into_owned());
            match (method.as_str(), rest.as_str()) {
                ("GET", "query") | ("GET", "tooling/query") => match q {
                    None => sf_error(
                        StatusCode::BAD_REQUEST,
                        "MALFORMED_QUERY",
                        "A query string has to be specified",
                    ),
                    Some(q) => match run_query(&d, &q, rest == "tooling/query") {
                        Ok(rows) => {
                            let total = rows.len();
                            (
                                StatusCode::OK,
                                query_answer(&mut d, &version, rows, 0, total),
                            )
                        }
                        Err(e) => e,
                    },
                },
                ("GET", r) if r.starts_with("query/") => {
                    let locator = &r["query/".len()..];
                    match d.locators.remove(locator) {
                        None => sf_error(
                            StatusCode::BAD_REQUEST,
                            "INVALID_QUERY_LOCATOR",
                            "invalid query locator",
                        ),
                        Some((rows, read, total)) => (
                            StatusCode::OK,
                            query_answer(&mut d, &version, rows, read, total),
                        ),
                    }
                }
                ("POST", "composite/sobjects") => composite(&mut d, false, &json_body),
                ("PATCH", "composite/sobjects") => composite(&mut d, true, &json_body),
                ("POST", "tooling/sobjects/CustomField") => create_custom_field(&mut d, &json_body),
                _ => sf_error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    "The requested resource does not exist",
                ),
            }
        }
    } else {
        sf_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
    };
    d.hits.push(Hit {
        method: method.to_string(),
        path,
        query,
        body: json_body,
        status: status.as_u16(),
        authorization,
    });
    drop(d);
    (status, out, serde_json::to_vec(&answer).unwrap()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soql_subset_filters_and_escapes() {
        let q = parse(
            r"SELECT Id, Email FROM Contact WHERE Email IN ('o\'b@x.io', 'a@b.c') OR (Website LIKE '%my\_co%' AND LastModifiedDate >= 2026-12-01T10:00:00Z) ORDER BY LastModifiedDate ASC, Id ASC",
        )
        .unwrap();
        assert_eq!(q.object, "Contact");
        assert_eq!(q.order.len(), 2);
        let row: Map<String, Value> = serde_json::from_value(json!({"Email": "O'B@x.io"})).unwrap();
        assert!(eval(q.cond.as_ref().unwrap(), &row));
        assert!(like("www.my_co.io", r"%my\_co%"));
        assert!(!like("www.myxco.io", r"%my\_co%"));
        let row: Map<String, Value> = serde_json::from_value(json!({
            "Website": "https://my_co.io", "LastModifiedDate": "2026-12-01T09:59:59.000+0000"
        }))
        .unwrap();
        assert!(!eval(q.cond.as_ref().unwrap(), &row));
        assert!(parse("SELECT Id FROM Account WHERE Name = 'x").is_err());
    }

    #[tokio::test]
    async fn answers_like_an_org() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sf = FakeSalesforce::start("tok", "ref", "cid", "csec").await;
        let c = reqwest::Client::new();
        let api = format!("{}/services/data/v60.0", sf.url);
        let a = sf.add(
            "Account",
            json!({"Name": "Acme", "Website": "https://www.acme.com"}),
        );
        sf.add(
            "Account",
            json!({"Name": "Notacme", "Website": "notacme.io"}),
        );
        sf.add("Account", json!({"Name": "Third"}));
        sf.with(|d| d.page_size = 2);
        let get = |url: String, token: &'static str| {
            let c = c.clone();
            async move {
                let r = c.get(url).bearer_auth(token).send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        let q = |soql: &str| {
            format!(
                "{api}/query?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("q", soql)
                    .finish()
            )
        };
        // Paging.
        let (st, page) = get(
            q("SELECT Id, Name FROM Account ORDER BY LastModifiedDate ASC, Id ASC"),
            "tok",
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(page["done"], false);
        assert_eq!(page["totalSize"], 3);
        assert_eq!(page["records"].as_array().unwrap().len(), 2);
        let next = page["nextRecordsUrl"].as_str().unwrap();
        let (_, page2) = get(format!("{}{next}", sf.url), "tok").await;
        assert_eq!(page2["done"], true);
        assert_eq!(page2["records"][0]["Name"], "Third");
        // Filters, unknown columns, bad tokens.
        let (_, found) = get(
            q("SELECT Id FROM Account WHERE Website LIKE '%acme.com%'"),
            "tok",
        )
        .await;
        assert_eq!(found["records"].as_array().unwrap().len(), 1);
        assert_eq!(found["records"][0]["Id"], a.as_str());
        let (st, e) = get(q("SELECT DevSignal_Score__c FROM Account"), "tok").await;
        assert_eq!(
            (st, e[0]["errorCode"].as_str()),
            (400, Some("INVALID_FIELD"))
        );
        let (st, e) = get(q("SELECT Id FROM Account"), "old").await;
        assert_eq!(
            (st, e[0]["errorCode"].as_str()),
            (401, Some("INVALID_SESSION_ID"))
        );
        // Custom fields, then writes with per-record answers.
        let field = json!({"FullName": "Account.DevSignal_Score__c",
                           "Metadata": {"label": "Score", "type": "Number", "precision": 3, "scale": 0}});
        let post = |url: String, body: Value| {
            let c = c.clone();
            async move {
                let r = c
                    .post(url)
                    .bearer_auth("tok")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        assert_eq!(
            post(format!("{api}/tooling/sobjects/CustomField"), field.clone())
                .await
                .0,
            201
        );
        let (st, e) = post(format!("{api}/tooling/sobjects/CustomField"), field).await;
        assert_eq!(
            (st, e[0]["errorCode"].as_str()),
            (400, Some("DUPLICATE_VALUE"))
        );
        let (st, res) = post(
            format!("{api}/composite/sobjects"),
            json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Account"}, "Name": "Initech", "DevSignal_Score__c": 80},
                {"attributes": {"type": "Account"}, "Name": "REFUSE ME"},
                {"attributes": {"type": "Account"}, "Website": "x.io"},
            ]}),
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(res[0]["success"], true);
        assert_eq!(
            res[1]["errors"][0]["statusCode"],
            "FIELD_CUSTOM_VALIDATION_EXCEPTION"
        );
        assert_eq!(res[2]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
        sf.delete(&a);
        let r = c
            .patch(format!("{api}/composite/sobjects"))
            .bearer_auth("tok")
            .json(&json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Account"}, "id": a, "DevSignal_Score__c": 1},
                {"attributes": {"type": "Account"}, "id": res[0]["id"], "DevSignal_Score__c": 2},
            ]}))
            .send()
            .await
            .unwrap();
        let res: Value = r.json().await.unwrap();
        assert_eq!(res[0]["errors"][0]["statusCode"], "ENTITY_IS_DELETED");
        assert_eq!(res[1]["success"], true);
        let id = res[1]["id"].as_str().unwrap();
        assert_eq!(sf.get(id).unwrap().fields["DevSignal_Score__c"], 2);
        // Tokens.
        let form = |pairs: &[(&str, &str)]| {
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        };
        let token = |body: String| {
            let c = c.clone();
            let url = format!("{}/services/oauth2/token", sf.url);
            async move {
                let r = c
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        let (st, t) = token(form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "ref"),
            ("client_id", "cid"),
            ("client_secret", "csec"),
        ]))
        .await;
        assert_eq!(st, 200);
        assert_eq!(t["instance_url"], sf.url.as_str());
        assert!(t.get("refresh_token").is_none());
        let new = t["access_token"].as_str().unwrap().to_owned();
        let (st, _) = get(q("SELECT Id FROM Account"), "tok").await;
        assert_eq!(st, 401, "the old token is no longer current");
        sf.with(|d| d.revoked = true);
        let (st, t) = token(form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "ref"),
            ("client_id", "cid"),
            ("client_secret", "csec"),
        ]))
        .await;
        assert_eq!((st, t["error"].as_str()), (400, Some("invalid_grant")));
        // The allowance.
        sf.with(|d| d.limit_exceeded = true);
        let r = c
            .get(q("SELECT Id FROM Account"))
            .bearer_auth(&new)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403);
        assert_eq!(r.headers()["sforce-limit-info"], "api-usage=15000/15000");
    }
}
