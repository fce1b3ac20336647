//! The demo's data, generated from a seed: eight developer-tool companies with their people,
//! about 600 signals of many kinds over 45 days (each company at its own intensity and
//! recency, so the model scores them into different tiers), deals and activities. Pure: the
//! same seed gives the same rows (times relative to now).

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Days of history the demo spans (signals and daily score snapshots).
pub const DAYS: i64 = 45;
/// The tag every seeded account and contact carries.
pub const TAG: &str = "demo";

pub struct Company {
    pub name: &'static str,
    pub domain: &'static str,
    pub industry: &'static str,
    pub size: &'static str,
    pub github_org: &'static str,
    pub city: &'static str,
    pub country: &'static str,
    pub product: &'static str,
    pub tags: &'static [&'static str],
    /// How many signals, and over how many recent days they spread.
    pub signals: usize,
    pub span_days: i64,
    /// How many days ago its activity stopped (0: still active).
    pub quiet_days: i64,
    /// How many of its people are active (the first ones).
    pub active_people: usize,
    pub people: &'static [(&'static str, &'static str, &'static str, &'static str)],
}

/// (first name, last name, title, GitHub login) per person.
pub const COMPANIES: &[Company] = &[
    Company {
        name: "Arcline Tools",
        domain: "arcline.dev",
        industry: "Developer Tools",
        size: "MEDIUM",
        github_org: "arcline",
        city: "San Francisco",
        country: "US",
        product: "arc-sdk",
        tags: &["enterprise-pilot", "champion"],
        signals: 250,
        span_days: 20,
        quiet_days: 0,
        active_people: 4,
        people: &[
            ("Maya", "Okafor", "VP of Engineering", "mayaokafor"),
            ("Liam", "Brandt", "Staff Engineer", "lbrandt"),
            ("Sofia", "Reyes", "Senior Developer", "sreyes-dev"),
            ("Kenji", "Watanabe", "Platform Engineer", "kwatanabe"),
        ],
    },
    Company {
        name: "NovaCLI",
        domain: "novacli.io",
        industry: "DevOps",
        size: "STARTUP",
        github_org: "novacli",
        city: "Berlin",
        country: "DE",
        product: "nova",
        tags: &["champion"],
        signals: 165,
        span_days: 25,
        quiet_days: 0,
        active_people: 3,
        people: &[
            ("Jonas", "Keller", "CTO", "jkeller"),
            ("Amira", "Haddad", "DevOps Engineer", "amirah"),
            ("Felix", "Novak", "Software Engineer", "fnovak"),
        ],
    },
    Company {
        name: "CloudForge",
        domain: "cloudforge.sh",
        industry: "Cloud Infrastructure",
        size: "LARGE",
        github_org: "cloudforge",
        city: "Seattle",
        country: "US",
        product: "forge-cli",
        tags: &["expansion"],
        signals: 135,
        span_days: 35,
        quiet_days: 1,
        active_people: 3,
        people: &[
            ("Priya", "Raman", "Head of Platform", "priyaraman"),
            ("Ethan", "Cole", "Site Reliability Engineer", "ecole-sre"),
            ("Grace", "Lin", "Developer Advocate", "gracelin"),
        ],
    },
    Company {
        name: "DataPipe Labs",
        domain: "datapipe.dev",
        industry: "Data Engineering",
        size: "SMALL",
        github_org: "datapipe-labs",
        city: "London",
        country: "GB",
        product: "pipekit",
        tags: &["open-source"],
        signals: 25,
        span_days: 30,
        quiet_days: 2,
        active_people: 2,
        people: &[
            ("Oliver", "Hughes", "Data Engineer", "ohughes"),
            ("Nadia", "Petrova", "Engineering Manager", "npetrova"),
        ],
    },
    Company {
        name: "Synthwave AI",
        domain: "synthwave.ai",
        industry: "AI / ML",
        size: "STARTUP",
        github_org: "synthwave-ai",
        city: "Toronto",
        country: "CA",
        product: "wavelet",
        tags: &["ai"],
        signals: 14,
        span_days: 40,
        quiet_days: 5,
        active_people: 2,
        people: &[
            ("Lucas", "Moreau", "ML Engineer", "lmoreau"),
            ("Hana", "Kim", "Founder & CEO", "hanakim"),
        ],
    },
    Company {
        name: "ByteShift",
        domain: "byteshift.io",
        industry: "Security",
        size: "SMALL",
        github_org: "byteshift",
        city: "Amsterdam",
        country: "NL",
        product: "shiftguard",
        tags: &["security"],
        signals: 5,
        span_days: 40,
        quiet_days: 18,
        active_people: 1,
        people: &[
            ("Daan", "Visser", "Security Engineer", "dvisser"),
            ("Elena", "Rossi", "Backend Developer", "erossi"),
        ],
    },
    Company {
        name: "Lumina Systems",
        domain: "luminasys.com",
        industry: "Observability",
        size: "ENTERPRISE",
        github_org: "lumina-systems",
        city: "Austin",
        country: "US",
        product: "lumen-agent",
        tags: &["enterprise"],
        signals: 3,
        span_days: 45,
        quiet_days: 24,
        active_people: 1,
        people: &[("Marcus", "Webb", "Director of Engineering", "mwebb")],
    },
    Company {
        name: "OpenGrid",
        domain: "opengrid.org",
        industry: "Open Source",
        size: "SMALL",
        github_org: "opengrid",
        city: "Lisbon",
        country: "PT",
        product: "gridctl",
        tags: &["open-source"],
        signals: 3,
        span_days: 45,
        quiet_days: 30,
        active_people: 1,
        people: &[
            ("Inês", "Costa", "Maintainer", "inescosta"),
            ("Tom", "Fischer", "Contributor", "tfischer"),
            ("Ava", "Nguyen", "Software Engineer", "avanguyen"),
        ],
    },
];

/// Signal types with their weight in the mix: GitHub activity, package installs, product use,
/// docs and pricing reads, community.
const TYPES: &[(&str, u32)] = &[
    ("repo_star", 6),
    ("repo_fork", 3),
    ("issue_opened", 4),
    ("issue_comment", 5),
    ("pr_opened", 3),
    ("pr_merged", 2),
    ("code_push", 3),
    ("npm_download", 7),
    ("pypi_download", 3),
    ("package_install", 4),
    ("signup", 1),
    ("api_call", 9),
    ("feature_usage", 8),
    ("docs_read", 9),
    ("page_view", 8),
    ("pricing_page_view", 3),
    ("blog_read", 2),
    ("discord_message", 4),
    ("discord_member_joined", 1),
    ("stackoverflow_question", 1),
    ("twitter_mention", 2),
    ("support_ticket", 1),
    ("demo_request", 1),
];

const PAGES: &[&str] = &[
    "/docs/quickstart",
    "/docs/api",
    "/docs/self-hosting",
    "/pricing",
    "/blog/launch-week",
    "/changelog",
];
const FEATURES: &[&str] = &["sso", "audit-log", "webhooks", "dashboards", "cli-sync"];

/// One generated signal: whose (company and person index, `None` for an anonymous visit),
/// what and when.
pub struct Signal {
    pub company: usize,
    pub person: Option<usize>,
    pub signal_type: &'static str,
    pub timestamp: DateTime<Utc>,
    pub metadata: Value,
    pub anonymous_id: Option<String>,
}

fn pick_type(rng: &mut StdRng) -> &'static str {
    let total: u32 = TYPES.iter().map(|(_, w)| w).sum();
    let mut n = rng.random_range(0..total);
    for (t, w) in TYPES {
        if n < *w {
            return t;
        }
        n -= w;
    }
    TYPES[0].0
}

fn metadata(rng: &mut StdRng, c: &Company, t: &str) -> Value {
    let repo = format!("{}/{}", c.github_org, c.product);
    match t {
        "repo_star" | "repo_fork" | "code_push" => json!({"repo": repo}),
        "issue_opened" | "issue_comment" | "pr_opened" | "pr_merged" => {
            json!({"repo": repo, "number": rng.random_range(1..900)})
        }
        "npm_download" | "package_install" => {
            json!({"package": format!("@{}/{}", c.github_org, c.product), "version": format!("2.{}.{}", rng.random_range(0..9), rng.random_range(0..20))})
        }
        "pypi_download" => {
            json!({"package": c.product, "version": format!("1.{}.0", rng.random_range(0..12))})
        }
        "api_call" => {
            let endpoint = ["/v1/events", "/v1/query", "/v1/projects"][rng.random_range(0..3)];
            json!({"endpoint": endpoint, "calls": rng.random_range(10..5000)})
        }
        "feature_usage" => json!({"feature": FEATURES[rng.random_range(0..FEATURES.len())]}),
        "page_view" | "docs_read" | "blog_read" | "pricing_page_view" => {
            let path = if t == "pricing_page_view" {
                "/pricing"
            } else {
                PAGES[rng.random_range(0..PAGES.len())]
            };
            json!({"path": path})
        }
        "discord_message" | "discord_member_joined" => json!({"channel": "#help"}),
        "support_ticket" => json!({"priority": "normal"}),
        _ => json!({}),
    }
}

/// Every signal of the demo, oldest first.
pub fn signals(seed: u64, now: DateTime<Utc>) -> Vec<Signal> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for (ci, c) in COMPANIES.iter().enumerate() {
        let span = c.span_days.min(DAYS) * 86_400;
        let quiet = c.quiet_days * 86_400;
        for _ in 0..c.signals {
            // Recent days weigh more: the square of a uniform number leans toward zero.
            let u: f64 = rng.random();
            let secs = quiet + ((span - quiet) as f64 * u * u) as i64 + rng.random_range(0..3600);
            let signal_type = pick_type(&mut rng);
            let anonymous = matches!(signal_type, "page_view" | "pricing_page_view")
                && rng.random_range(0..3) == 0;
            let person = (!anonymous).then(|| {
                // The first people of a company do most of its activity.
                let n = c.active_people.clamp(1, c.people.len());
                let a = rng.random_range(0..n);
                let b = rng.random_range(0..n);
                a.min(b)
            });
            out.push(Signal {
                company: ci,
                person,
                signal_type,
                timestamp: now - Duration::seconds(secs.min(DAYS * 86_400 - 60)),
                metadata: metadata(&mut rng, c, signal_type),
                anonymous_id: anonymous.then(|| format!("anon-{:08x}", rng.random::<u32>())),
            });
        }
    }
    out.sort_by_key(|s| s.timestamp);
    out
}

/// (company index, title, stage, amount, contact index) of each deal.
pub const DEALS: &[(usize, &str, &str, f64, usize)] = &[
    (0, "Arcline — Enterprise plan", "NEGOTIATION", 48_000.0, 0),
    (1, "NovaCLI — Team plan", "SALES_QUALIFIED", 18_000.0, 0),
    (
        2,
        "CloudForge — platform expansion",
        "EXPANSION_SIGNAL",
        32_000.0,
        0,
    ),
    (3, "DataPipe Labs — pilot", "ACTIVATED", 6_000.0, 1),
    (5, "ByteShift — security review", "CLOSED_LOST", 9_500.0, 0),
];

/// (company index, kind, title, description, contact index) of each activity.
pub const ACTIVITIES: &[(usize, &str, &str, &str, Option<usize>)] = &[
    (
        0,
        "MEETING",
        "Architecture review",
        "Walked through SSO and audit-log needs for the rollout.",
        Some(0),
    ),
    (
        0,
        "TASK",
        "Send security questionnaire",
        "Security team asked for the SOC 2 report.",
        Some(0),
    ),
    (
        1,
        "CALL",
        "Discovery call",
        "Team of 12 using the CLI daily; wants shared dashboards.",
        Some(0),
    ),
    (
        1,
        "EMAIL",
        "Pricing follow-up",
        "Sent the Team plan quote.",
        Some(1),
    ),
    (
        2,
        "NOTE",
        "Usage spike",
        "API calls tripled after the forge-cli 2.3 release.",
        None,
    ),
    (
        3,
        "MEETING",
        "Pilot kickoff",
        "Two pipelines in the pilot; success criteria agreed.",
        Some(1),
    ),
    (
        4,
        "TASK",
        "Invite to beta",
        "Interested in the ML feature flags beta.",
        Some(1),
    ),
    (
        6,
        "NOTE",
        "Went quiet",
        "No activity since the evaluation ended.",
        None,
    ),
];
