//! RUNBOOK.md stays true: every `devsignal …` command in it parses against the real command line
//! and names real jobs, queues and cron entries; every SQL block runs against the real schema
//! (```` ```sql ```` on both databases, ```` ```sql postgres ```` in the PostgreSQL pass); the
//! Prometheus alert rules name metrics the server exports and link to sections that exist.

use std::collections::BTreeSet;
use std::path::Path;

use clap::Parser as _;
use devsignal_tests::spawn_app_with;
use sea_orm::{ConnectionTrait, Statement};
use server::cli::Cli;
use yaml_rust2::YamlLoader;

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The fenced blocks of a Markdown text: (info string, body).
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some((info.trim().to_owned(), String::new()));
                }
            }
            Some((_, body)) => {
                if trimmed.starts_with("```") {
                    out.extend(open.take());
                } else {
                    body.push_str(trimmed);
                    body.push('\n');
                }
            }
        }
    }
    out
}

/// Splits a shell line into words (quotes kept together), after replacing `$(…)` with a word.
fn words(line: &str) -> Vec<String> {
    let mut text = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("$(") {
        text.push_str(&rest[..start]);
        let end = rest[start..]
            .find(')')
            .map_or(rest.len(), |e| start + e + 1);
        text.push_str("20261203");
        rest = &rest[end..];
    }
    text.push_str(rest);
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            (None, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Every `devsignal` command line in the runbook: in shell blocks (whole commands), and in
/// inline code (`true`: prose may name a command without its arguments).
fn commands(text: &str) -> Vec<(Vec<String>, bool)> {
    let mut lines: Vec<(String, bool)> = blocks(text)
        .into_iter()
        .filter(|(info, _)| info == "bash")
        .flat_map(|(_, body)| {
            body.lines()
                .map(|l| (l.to_owned(), false))
                .collect::<Vec<_>>()
        })
        .collect();
    // Inline code, line by line, outside fenced blocks.
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            lines.extend(
                line.split('`')
                    .skip(1)
                    .step_by(2)
                    .map(|s| (s.to_owned(), true)),
            );
        }
    }
    let mut out = Vec::new();
    for (line, inline) in lines {
        let w = words(&line);
        // The program, not an argument (`createdb -U devsignal …`).
        let Some(at) = w
            .iter()
            .enumerate()
            .position(|(i, word)| word == "devsignal" && (i == 0 || !w[i - 1].starts_with('-')))
        else {
            continue;
        };
        let cmd: Vec<String> = w[at..]
            .iter()
            .take_while(|w| !["#", "&&", "|", ";", "||"].contains(&w.as_str()))
            // A placeholder for an id stands for an id.
            .map(|w| {
                if w.starts_with('<') && w.ends_with("id>") {
                    "0193f0c2-5b7e-7a10-9c1d-2e4f6a8b0c1d".to_owned()
                } else {
                    w.clone()
                }
            })
            .collect();
        out.push((cmd, inline));
    }
    out
}

#[test]
fn every_devsignal_command_in_the_runbook_parses_and_names_real_things() {
    use server::cli::Command;
    use server::cli::jobs::JobsAction;
    let text = repo_file("RUNBOOK.md");
    let cmds = commands(&text);
    assert!(cmds.len() > 30, "only {} commands found", cmds.len());
    let schedules: BTreeSet<&str> = jobs::registry::SCHEDULES.iter().map(|s| s.name).collect();
    let mut seen = BTreeSet::new();
    for (cmd, inline) in &cmds {
        let shown = cmd.join(" ");
        let parsed = match Cli::try_parse_from(cmd) {
            Ok(p) => p,
            Err(e)
                if matches!(
                    e.kind(),
                    clap::error::ErrorKind::DisplayVersion | clap::error::ErrorKind::DisplayHelp
                ) =>
            {
                continue;
            }
            Err(e)
                if *inline
                    && matches!(
                        e.kind(),
                        clap::error::ErrorKind::MissingRequiredArgument
                            | clap::error::ErrorKind::MissingSubcommand
                            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                    ) =>
            {
                // Prose naming a command (`devsignal backup`); its arguments are elsewhere.
                continue;
            }
            Err(e) => panic!("RUNBOOK.md: `{shown}` does not parse:\n{e}"),
        };
        let Some(command) = parsed.command else {
            continue;
        };
        seen.insert(
            format!("{command:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap_or("")
                .to_owned(),
        );
        let queue_known = |q: &str| {
            assert!(
                q.starts_with('<') || jobs::registry::QUEUES.contains(&q),
                "RUNBOOK.md: `{shown}` names no queue"
            );
        };
        if let Command::Jobs { action } = command {
            match action {
                JobsAction::Trigger { job, .. } => assert!(
                    jobs::registry::find(&job).is_some(),
                    "RUNBOOK.md: `{shown}` names no job"
                ),
                JobsAction::Pause { queue }
                | JobsAction::Resume { queue }
                | JobsAction::RetryFailed { queue, .. }
                | JobsAction::Clean { queue, .. } => queue_known(&queue),
                JobsAction::Disable { schedule, .. } | JobsAction::Enable { schedule } => assert!(
                    schedule.starts_with('<') || schedules.contains(schedule.as_str()),
                    "RUNBOOK.md: `{shown}` names no cron entry"
                ),
                _ => {}
            }
        }
    }
    // The runbook covers every operator command there is.
    for name in [
        "Jobs", "Migrate", "ApiKeys", "Secrets", "Doctor", "Backup", "Restore",
    ] {
        assert!(
            seen.contains(name),
            "RUNBOOK.md never uses `{name}`: {seen:?}"
        );
    }
    // Its cron table is the real one.
    for s in jobs::registry::SCHEDULES {
        assert!(
            text.contains(&format!("| `{}` | `{}` |", s.name, s.cron)),
            "RUNBOOK.md's cron table lacks {} ({})",
            s.name,
            s.cron
        );
    }
}

#[tokio::test]
async fn every_sql_query_in_the_runbook_runs_on_our_schema() {
    let app = spawn_app_with(&[]).await;
    let backend = app.db.get_database_backend();
    let postgres = app.test_db.is_postgres();
    let mut ran = 0;
    for (info, body) in blocks(&repo_file("RUNBOOK.md")) {
        let runs_here = match info.as_str() {
            "sql" => true,
            "sql postgres" => postgres,
            _ => continue,
        };
        if !runs_here {
            continue;
        }
        let sql = body.trim().trim_end_matches(';');
        if let Err(e) = app
            .db
            .query_all_raw(Statement::from_string(backend, sql.to_owned()))
            .await
        {
            panic!("RUNBOOK.md's query fails on {backend:?}: {e}\n{sql}");
        }
        ran += 1;
    }
    assert!(ran >= 6, "only {ran} queries ran");
}

/// A heading's GitHub anchor.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[tokio::test]
async fn the_alert_rules_name_exported_metrics_and_link_to_the_runbook() {
    // Redis configured (if away), so its figures are registered.
    let app = spawn_app_with(&[
        ("REDIS_URL", "redis://127.0.0.1:1"),
        ("NPM_DOWNLOADS_API_URL", "http://127.0.0.1:9"),
        ("NPM_REGISTRY_URL", "http://127.0.0.1:9"),
    ])
    .await;
    // An integration, so its family has a series.
    let s = app.register("ops@vendor.io", "Vendor").await;
    devsignal_tests::connectors::connect(
        &app,
        &s,
        "NPM",
        serde_json::json!({"packages": ["widget"]}),
        None,
    )
    .await;
    let exposition = app.get("/metrics").await.text().await.unwrap();
    let types: BTreeSet<&str> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let exported = |name: &str| {
        types.contains(name)
            || ["_total", "_bucket", "_count", "_sum"]
                .iter()
                .any(|suffix| name.strip_suffix(suffix).is_some_and(|b| types.contains(b)))
    };
    let anchors: BTreeSet<String> = repo_file("RUNBOOK.md")
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect();

    let doc = YamlLoader::load_from_str(&repo_file("deploy/prometheus-alerts.yml"))
        .expect("the alert rules are YAML")
        .remove(0);
    let rules = doc["groups"][0]["rules"]
        .as_vec()
        .expect("a group of rules");
    assert!(rules.len() >= 10);
    let mut names = BTreeSet::new();
    for rule in rules {
        let alert = rule["alert"].as_str().expect("each rule is an alert");
        assert!(names.insert(alert), "{alert} twice");
        let expr = rule["expr"].as_str().expect("an expression");
        assert!(
            ["warning", "critical"].contains(&rule["labels"]["severity"].as_str().unwrap_or("")),
            "{alert}: severity"
        );
        let runbook = rule["annotations"]["runbook"].as_str().unwrap_or("");
        let anchor = runbook
            .strip_prefix("RUNBOOK.md#")
            .unwrap_or_else(|| panic!("{alert}: no runbook link"));
        assert!(anchors.contains(anchor), "{alert}: no section #{anchor}");
        let mut rest = expr;
        while let Some(at) = rest.find("devsignal_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(exported(&name), "{alert}: {name} is not exported");
            rest = &rest[at + name.len()..];
        }
    }
}
