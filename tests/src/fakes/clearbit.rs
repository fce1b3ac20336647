//! A fake of Clearbit's Enrichment API: `GET /v2/companies/find?domain=` and
//! `GET /v2/people/find?email=` (one server plays company.clearbit.com and person.clearbit.com),
//! answering like the real one: `Authorization: Bearer <key>` (401 `auth_required` otherwise),
//! a Company or Person object when known, 404 `unknown_record` when not, 422 `invalid_domain` /
//! `email_invalid` for a malformed lookup, 202 (queued) for lookups it is still researching, and
//! 429 `rate_limit` with `Retry-After` while a chosen number of requests are refused. Every
//! request is recorded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    /// The `domain` or `email` asked about.
    pub lookup: String,
    pub authorization: Option<String>,
    pub status: u16,
}

pub struct Data {
    pub key: String,
    /// Known companies by domain (Clearbit Company objects).
    pub companies: HashMap<String, Value>,
    /// Known people by email (Clearbit Person objects).
    pub people: HashMap<String, Value>,
    /// Lookups Clearbit is still researching: answered 202.
    pub queued: Vec<String>,
    /// Lookups Clearbit finds malformed: answered 422.
    pub invalid: Vec<String>,
    /// The next this many requests answer 429 with `Retry-After: retry_after`.
    pub rate_limited: u32,
    pub retry_after: u64,
    pub hits: Vec<Hit>,
}

#[derive(Clone)]
pub struct FakeClearbit {
    pub url: String,
    pub data: Arc<Mutex<Data>>,
}

/// A Clearbit Company object as the API returns it.
pub fn company(domain: &str, name: &str, industry: &str, employees: i64) -> Value {
    json!({
        "id": format!("c-{domain}"),
        "name": name,
        "legalName": format!("{name} Inc."),
        "domain": domain,
        "domainAliases": [],
        "site": {"phoneNumbers": [], "emailAddresses": []},
        "category": {
            "sector": "Information Technology",
            "industryGroup": "Software & Services",
            "industry": industry,
            "subIndustry": "Application Software",
            "sicCode": "73",
            "naicsCode": "51"
        },
        "tags": ["Technology", "SAAS", "B2B"],
        "description": format!("{name} builds developer tools."),
        "foundedYear": 2015,
        "location": "548 Market St, San Francisco, CA 94104, USA",
        "timeZone": "America/Los_Angeles",
        "utcOffset": -8,
        "geo": {
            "streetNumber": "548", "streetName": "Market Street", "subPremise": null,
            "city": "San Francisco", "postalCode": "94104", "state": "California",
            "stateCode": "CA", "country": "United States", "countryCode": "US",
            "lat": 37.79, "lng": -122.4
        },
        "logo": format!("https://logo.clearbit.com/{domain}"),
        "facebook": {"handle": null, "likes": null},
        "linkedin": {"handle": format!("company/{}", name.to_lowercase())},
        "twitter": {"handle": name.to_lowercase(), "id": "1", "bio": null, "followers": 1200,
                    "following": 10, "location": "San Francisco", "site": null, "avatar": null},
        "crunchbase": {"handle": null},
        "emailProvider": false,
        "type": "private",
        "ticker": null,
        "identifiers": {"usEIN": null},
        "phone": null,
        "metrics": {
            "alexaUsRank": null, "alexaGlobalRank": null, "trafficRank": "high",
            "employees": employees, "employeesRange": "51-250", "marketCap": null,
            "raised": 1000000, "annualRevenue": null, "estimatedAnnualRevenue": "$10M-$50M",
            "fiscalYearEnd": null
        },
        "indexedAt": "2026-11-01T00:00:00.000Z",
        "tech": ["google_analytics", "aws_route_53", "stripe"],
        "techCategories": ["analytics", "dns", "payment"],
        "parent": {"domain": null},
        "ultimateParent": {"domain": null}
    })
}

/// A Clearbit Person object as the API returns it.
pub fn person(email: &str, given: &str, family: &str, title: &str, seniority: &str) -> Value {
    json!({
        "id": format!("p-{email}"),
        "name": {"fullName": format!("{given} {family}"), "givenName": given, "familyName": family},
        "email": email,
        "location": "London, England, United Kingdom",
        "timeZone": "Europe/London",
        "utcOffset": 0,
        "geo": {"city": "London", "state": "England", "stateCode": "ENG",
                "country": "United Kingdom", "countryCode": "GB", "lat": 51.5, "lng": -0.12},
        "bio": null,
        "site": null,
        "avatar": format!("https://avatars.example/{given}.png"),
        "employment": {"domain": email.split('@').nth(1), "name": "Acme", "title": title,
                       "role": "engineering", "subRole": "software_engineer", "seniority": seniority},
        "facebook": {"handle": null},
        "github": {"handle": given.to_lowercase(), "avatar": null, "company": null, "blog": null,
                   "followers": 3, "following": 1},
        "twitter": {"handle": format!("{}_dev", given.to_lowercase()), "id": "2", "bio": null,
                    "followers": 10, "following": 5, "statuses": 3, "favorites": 1,
                    "location": null, "site": null, "avatar": null},
        "linkedin": {"handle": format!("in/{}{}", given.to_lowercase(), family.to_lowercase())},
        "googleplus": {"handle": null},
        "gravatar": {"handle": null, "urls": [], "avatar": null, "avatars": []},
        "fuzzy": false,
        "emailProvider": false,
        "indexedAt": "2026-11-01T00:00:00.000Z"
    })
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({"error": {"type": kind, "message": message}}).to_string(),
    )
        .into_response()
}

impl FakeClearbit {
    /// A fake accepting `key`.
    pub async fn start(key: &str) -> FakeClearbit {
        let data = Arc::new(Mutex::new(Data {
            key: key.into(),
            companies: HashMap::new(),
            people: HashMap::new(),
            queued: Vec::new(),
            invalid: Vec::new(),
            rate_limited: 0,
            retry_after: 600,
            hits: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(data.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeClearbit { url, data }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Data) -> R) -> R {
        f(&mut self.data.lock().unwrap())
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.with(|d| d.hits.clone())
    }

    /// Requests about `lookup` (a domain or email).
    pub fn hits_for(&self, lookup: &str) -> usize {
        self.hits().iter().filter(|h| h.lookup == lookup).count()
    }

    /// The environment that points the server at this fake.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CLEARBIT_COMPANY_URL", self.url.clone()),
            ("CLEARBIT_PERSON_URL", self.url.clone()),
        ]
    }
}

async fn handle(State(data): State<Arc<Mutex<Data>>>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut d = data.lock().unwrap();
    let (lookup, resp) = answer(
        &mut d,
        &path,
        param("domain"),
        param("email"),
        &authorization,
    );
    d.hits.push(Hit {
        path,
        lookup,
        authorization,
        status: resp.status().as_u16(),
    });
    resp
}

fn answer(
    d: &mut Data,
    path: &str,
    domain: Option<String>,
    email: Option<String>,
    authorization: &Option<String>,
) -> (String, Response) {
    let lookup = domain.clone().or(email.clone()).unwrap_or_default();
    if authorization.as_deref() != Some(&format!("Bearer {}", d.key)) {
        return (
            lookup,
            error(
                StatusCode::UNAUTHORIZED,
                "auth_required",
                "An API key is required, or the API key is invalid.",
            ),
        );
    }
    if d.rate_limited > 0 {
        d.rate_limited -= 1;
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit",
            "Rate limit exceeded. Limit is 600 requests per minute.",
        );
        r.headers_mut()
            .insert("retry-after", d.retry_after.to_string().parse().unwrap());
        return (lookup, r);
    }
    if d.queued.contains(&lookup) {
        return (
            lookup,
            (
                StatusCode::ACCEPTED,
                [("content-type", "application/json")],
                json!({"error": {"type": "queued", "message": "The lookup is queued; try again later."}}).to_string(),
            )
                .into_response(),
        );
    }
    let invalid = d.invalid.contains(&lookup);
    match path {
        "/v2/companies/find" => {
            let Some(domain) = domain.filter(|d| d.contains('.') && !invalid) else {
                return (
                    lookup,
                    error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_domain",
                        "Invalid domain.",
                    ),
                );
            };
            match d.companies.get(&domain) {
                Some(c) => (lookup, axum::Json(c.clone()).into_response()),
                None => (
                    lookup,
                    error(StatusCode::NOT_FOUND, "unknown_record", "Unknown domain."),
                ),
            }
        }
        "/v2/people/find" => {
            let Some(email) = email.filter(|e| e.contains('@') && !invalid) else {
                return (
                    lookup,
                    error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "email_invalid",
                        "Invalid email.",
                    ),
                );
            };
            match d.people.get(&email) {
                Some(p) => (lookup, axum::Json(p.clone()).into_response()),
                None => (
                    lookup,
                    error(
                        StatusCode::NOT_FOUND,
                        "unknown_record",
                        "Unknown email address.",
                    ),
                ),
            }
        }
        _ => (
            lookup,
            error(StatusCode::NOT_FOUND, "not_found", "Resource not found."),
        ),
    }
}
