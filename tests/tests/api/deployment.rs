//! The deployment files as an operator uses them (no Docker engine needed): `compose.yaml` runs
//! the scaled shape, `.env.example` lists every variable the server reads and marks the required
//! ones, the README and RUNBOOK give the compose procedures, and the Dockerfile builds a
//! non-root image with a health check and a dependency layer of its own.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn compose() -> Yaml {
    YamlLoader::load_from_str(&repo_file("compose.yaml"))
        .expect("compose.yaml is YAML")
        .remove(0)
}

/// `.env.example` as (name, value) pairs, in order.
fn env_example() -> Vec<(String, String)> {
    repo_file(".env.example")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not NAME=value: {l}"));
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

/// Variables compose and the process read that the server's configuration does not.
const OUTSIDE_CONFIG: [&str; 4] = [
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "RUST_LOG",
];

fn strings(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        Yaml::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

#[test]
fn compose_runs_app_replicas_workers_postgres_and_redis() {
    let c = compose();
    let services = &c["services"];
    for name in ["app", "worker", "postgres", "redis"] {
        assert!(!services[name].is_badvalue(), "no {name} service");
    }
    let (app, worker) = (&services["app"], &services["worker"]);
    assert_eq!(
        strings(&app["command"]),
        ["devsignal", "serve", "--no-worker"]
    );
    assert_eq!(strings(&worker["command"]), ["devsignal", "worker"]);
    for (name, s) in [("app", app), ("worker", worker)] {
        assert_eq!(s["build"].as_str(), Some("."), "{name} builds the image");
        assert_eq!(strings(&s["env_file"]), [".env"], "{name} reads .env");
        assert_eq!(
            s["depends_on"]["postgres"]["condition"].as_str(),
            Some("service_healthy"),
            "{name} waits for PostgreSQL"
        );
        assert!(
            s["environment"]["DATABASE_URL"]
                .as_str()
                .is_some_and(|u| u.starts_with("postgres://") && u.contains("@postgres:5432/")),
            "{name} uses the postgres service"
        );
        assert_eq!(s["environment"]["REDIS_HOST"].as_str(), Some("redis"));
    }
    // The worker starts once the app is healthy (the app applies the migrations), and is
    // health-checked on its own port.
    assert_eq!(
        worker["depends_on"]["app"]["condition"].as_str(),
        Some("service_healthy")
    );
    let port = worker["environment"]["WORKER_HEALTH_PORT"]
        .as_str()
        .expect("the worker's health port is set");
    assert!(
        strings(&worker["healthcheck"]["test"])
            .iter()
            .any(|t| t.contains(&format!("localhost:{port}/health"))),
        "the worker's health check uses WORKER_HEALTH_PORT"
    );
    assert!(
        strings(&app["healthcheck"]["test"])
            .iter()
            .any(|t| t.contains("/health/ready")),
        "the app's health check waits for readiness"
    );
    assert!(
        strings(&services["postgres"]["volumes"])
            .iter()
            .any(|v| v.starts_with("pgdata:")),
        "PostgreSQL keeps its data in a volume"
    );
    assert!(!c["volumes"]["pgdata"].is_badvalue());

    // Every variable set for the server is one it reads.
    let known = server::config::Config::variables();
    for (name, s) in [("app", app), ("worker", worker)] {
        let Yaml::Hash(env) = &s["environment"] else {
            panic!("{name}: environment is a map");
        };
        for key in env.keys().filter_map(Yaml::as_str) {
            assert!(
                known.contains(key),
                "{name} sets {key}, which nothing reads"
            );
        }
    }
    // Every variable compose interpolates is in .env.example.
    let listed: BTreeSet<String> = env_example().into_iter().map(|(k, _)| k).collect();
    let text = repo_file("compose.yaml");
    for part in text.split("${").skip(1) {
        let var: String = part
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        assert!(
            listed.contains(&var),
            "compose.yaml uses ${{{var}}}, not in .env.example"
        );
    }
}

#[test]
fn env_example_lists_every_variable_and_marks_the_required_ones() {
    let example = env_example();
    let listed: BTreeSet<String> = example.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(listed.len(), example.len(), "a variable is listed twice");
    let known = server::config::Config::variables();
    let missing: Vec<&String> = known.difference(&listed).collect();
    assert!(missing.is_empty(), "not in .env.example: {missing:?}");
    let unknown: Vec<&String> = listed
        .difference(&known)
        .filter(|k| !OUTSIDE_CONFIG.contains(&k.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "in .env.example but read by nothing: {unknown:?}"
    );

    // What production refuses to start without is in the REQUIRED section.
    let text = repo_file(".env.example");
    let required_section = text
        .split("# --- Strongly recommended")
        .next()
        .unwrap_or_default();
    let prod: HashMap<String, String> = [("NODE_ENV".to_owned(), "production".to_owned())].into();
    let problems = server::config::Config::from_vars(&prod).unwrap_err();
    for p in &problems.0 {
        assert!(
            required_section.contains(&format!("\n{}=", p.var)),
            "{} is required in production but not in the REQUIRED section",
            p.var
        );
    }

    // The example's own values are valid: filled in where it leaves blanks for secrets, it
    // starts in production.
    let mut vars: HashMap<String, String> = example.into_iter().collect();
    for (k, v) in [
        (
            "DATABASE_URL",
            "postgres://devsignal:pw@postgres:5432/devsignal".to_owned(),
        ),
        ("JWT_SECRET", server::config::random_hex(64)),
        ("JWT_REFRESH_SECRET", server::config::random_hex(64)),
        ("ENCRYPTION_KEY", server::config::random_hex(32)),
        ("SMTP_URL", "smtp://mail.example.com:587".to_owned()),
        ("METRICS_TOKEN", "a-metrics-token".to_owned()),
    ] {
        vars.insert(k.to_owned(), v);
    }
    if let Err(e) = server::config::Config::from_vars(&vars) {
        panic!(".env.example's values do not start: {e}");
    }
}

#[test]
fn readme_and_runbook_give_the_compose_procedures() {
    for file in ["README.md", "RUNBOOK.md"] {
        let text = repo_file(file);
        for step in [
            "cp .env.example .env",
            "docker compose up -d --build",
            "docker compose ps",
            "docker compose logs -f app worker",
            "docker compose up -d --build app worker",
            "docker compose down",
            "docker compose exec app devsignal migrate status",
        ] {
            assert!(text.contains(step), "{file} lacks `{step}`");
        }
    }
}

#[test]
fn the_image_runs_as_a_user_with_data_in_a_volume_and_a_health_check() {
    let text = repo_file("Dockerfile");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let at = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix));
    // The dashboard is built in the image.
    assert!(text.contains("npm ci") && text.contains("npm run build"));
    // Dependencies are a layer of their own: built from the recipe before the sources arrive.
    let cook = at("RUN DEVSIGNAL_SKIP_FRONTEND=1 cargo chef cook").expect("a dependency layer");
    let sources = lines
        .iter()
        .enumerate()
        .skip(cook)
        .find(|(_, l)| l.starts_with("COPY . ."))
        .map(|(i, _)| i)
        .expect("the sources are copied after the dependencies are built");
    assert!(sources > cook);
    // The runtime stage: a user of its own, DATA_DIR a volume it owns, a health check.
    let runtime = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    let tail = &lines[runtime..];
    let user = tail
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the image names its user");
    assert!(!["root", "0"].contains(&user.trim()), "runs as root");
    assert!(
        tail.iter()
            .any(|l| l.starts_with("VOLUME") && l.contains("/data"))
    );
    assert!(tail.iter().any(|l| l.contains("DATA_DIR=/data")));
    assert!(
        tail.iter()
            .any(|l| l.contains("chown") && l.contains("/data"))
    );
    let health = tail
        .iter()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("a HEALTHCHECK");
    assert!(health.contains("/health"), "{health}");
}
