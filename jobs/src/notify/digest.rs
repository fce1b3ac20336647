//! The weekly digest as an email (text and HTML), from [`domain::digest::Digest`]; links go to the
//! dashboard, the unsubscribe link to the server.

use std::fmt::Write;

use domain::digest::{AccountMove, Digest};
use serde_json::Value;

use super::mail::Email;
use super::render::esc;

fn account_url(frontend_url: &str, m: &AccountMove) -> String {
    format!(
        "{}/accounts/{}",
        frontend_url.trim_end_matches('/'),
        m.account_id
    )
}

fn moved(m: &AccountMove) -> String {
    format!(
        "{}: {} → {} (score {} → {})",
        m.name,
        m.from_tier.as_deref().unwrap_or("none"),
        m.to_tier,
        m.from_score.map_or("–".into(), |s| s.to_string()),
        m.to_score
    )
}

/// A line of a section, with the link it leads to.
type Line = (String, Option<String>);

/// The digest's sections as (heading, lines).
fn sections(d: &Digest, frontend_url: &str) -> Vec<(String, Vec<Line>)> {
    let moves = |list: &[AccountMove]| {
        list.iter()
            .map(|m| (moved(m), Some(account_url(frontend_url, m))))
            .collect::<Vec<_>>()
    };
    let mut out = vec![(
        format!(
            "Signals: {} this week ({} the week before)",
            d.signals_this_week, d.signals_last_week
        ),
        d.signals_by_source
            .iter()
            .map(|s| {
                (
                    format!("{}: {} (was {})", s.source, s.this_week, s.last_week),
                    None,
                )
            })
            .collect(),
    )];
    if !d.new_hot.is_empty() {
        out.push(("New HOT accounts".into(), moves(&d.new_hot)));
    }
    if !d.tier_ups.is_empty() {
        out.push(("Rose a tier".into(), moves(&d.tier_ups)));
    }
    if !d.tier_downs.is_empty() {
        out.push(("Fell a tier".into(), moves(&d.tier_downs)));
    }
    if !d.score_movers.is_empty() {
        out.push(("Biggest score moves".into(), moves(&d.score_movers)));
    }
    if d.new_contacts_count > 0 {
        let mut lines: Vec<Line> = d
            .new_contacts
            .iter()
            .map(|c| {
                let who = match &c.email {
                    Some(e) if *e != c.name => format!("{} <{e}>", c.name),
                    _ => c.name.clone(),
                };
                (who, None)
            })
            .collect();
        let more =
            d.new_contacts_count as usize - d.new_contacts.len().min(d.new_contacts_count as usize);
        if more > 0 {
            lines.push((format!("and {more} more"), None));
        }
        out.push((format!("New contacts: {}", d.new_contacts_count), lines));
    }
    if d.anomalies_count > 0 {
        out.push((
            format!("Anomalies: {}", d.anomalies_count),
            d.anomalies
                .iter()
                .map(|a| {
                    (
                        format!(
                            "{}: {} ({}) on {}: {} signals, expected {}–{}",
                            a.name,
                            a.kind,
                            a.severity,
                            a.day,
                            a.count,
                            a.expected_min,
                            a.expected_max
                        ),
                        Some(format!(
                            "{}/accounts/{}",
                            frontend_url.trim_end_matches('/'),
                            a.account_id
                        )),
                    )
                })
                .collect(),
        ));
    }
    out
}

/// The digest as plain text (the email's text part, and `previewDigest`'s).
pub fn digest_text(d: &Digest, frontend_url: &str) -> String {
    let mut t = format!(
        "{} — the week of {} to {}\n",
        d.organization_name,
        d.week_start.format("%Y-%m-%d"),
        d.week_end.format("%Y-%m-%d")
    );
    for (heading, lines) in sections(d, frontend_url) {
        let _ = write!(t, "\n{heading}\n");
        for (line, link) in lines {
            let _ = match link {
                Some(l) => writeln!(t, "  - {line}  {l}"),
                None => writeln!(t, "  - {line}"),
            };
        }
    }
    let _ = write!(
        t,
        "\nOpen DevSignal: {}/\n",
        frontend_url.trim_end_matches('/')
    );
    t
}

/// The digest email to `to` (its content is a stored [`Digest`]).
pub fn digest_email(
    content: &Value,
    to: &str,
    frontend_url: &str,
    unsubscribe: &str,
) -> Result<Email, String> {
    let d: Digest = serde_json::from_value(content.clone())
        .map_err(|e| format!("the stored digest cannot be read: {e}"))?;
    let mut text = digest_text(&d, frontend_url);
    let _ = write!(
        text,
        "\n--\nYou receive the weekly digest of {}. Stop it: {unsubscribe}\n",
        d.organization_name
    );
    let mut h = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif;color:#111\">\
         <h2 style=\"margin:0 0 4px\">{}</h2><p style=\"color:#555;margin:0 0 16px\">The week of {} to {}</p>",
        esc(&d.organization_name),
        d.week_start.format("%Y-%m-%d"),
        d.week_end.format("%Y-%m-%d")
    );
    for (heading, lines) in sections(&d, frontend_url) {
        let _ = write!(
            h,
            "<h3 style=\"margin:16px 0 6px\">{}</h3><ul>",
            esc(&heading)
        );
        for (line, link) in lines {
            let _ = match link {
                Some(l) => write!(h, "<li><a href=\"{}\">{}</a></li>", esc(&l), esc(&line)),
                None => write!(h, "<li>{}</li>", esc(&line)),
            };
        }
        h.push_str("</ul>");
    }
    let _ = write!(
        h,
        "<p><a href=\"{}/\">Open DevSignal</a></p><hr><p style=\"font-size:12px;color:#666\">\
         You receive the weekly digest of {}. <a href=\"{}\">Unsubscribe from the digest</a>.</p></body></html>",
        esc(frontend_url.trim_end_matches('/')),
        esc(&d.organization_name),
        esc(unsubscribe)
    );
    Ok(Email {
        to: to.to_owned(),
        subject: format!("[DevSignal] {}", d.subject()),
        text,
        html: Some(h),
        unsubscribe: Some(unsubscribe.to_owned()),
    })
}
