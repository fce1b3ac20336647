//! What an alert looks like in an email (text and HTML) and in Slack (Block Kit), from the
//! content its delivery row holds. Links go to the dashboard (`FRONTEND_URL`); the unsubscribe
//! link to the server (`API_URL`).

use serde_json::{Value, json};

use super::mail::Email;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for Slack's mrkdwn (`&`, `<`, `>`).
fn slack_esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The lines of an alert's details worth showing (`key: value`).
fn detail_lines(content: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(obj) = content.get("details").and_then(Value::as_object) {
        for (k, v) in obj {
            let shown = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            lines.push(format!("{k}: {shown}"));
        }
    }
    lines
}

/// Where an alert's account is in the dashboard.
pub fn account_link(frontend_url: &str, content: &Value) -> Option<String> {
    let id = content.get("accountId").and_then(Value::as_str)?;
    Some(format!(
        "{}/accounts/{id}",
        frontend_url.trim_end_matches('/')
    ))
}

/// An alert email to `to`.
pub fn alert_email(content: &Value, to: &str, frontend_url: &str, unsubscribe: &str) -> Email {
    let title = text(content, "title");
    let account = text(content, "accountName");
    let rule = text(content, "ruleName");
    let trigger = text(content, "trigger");
    let link = account_link(frontend_url, content);
    let details = detail_lines(content);

    let mut t = format!("{title}\n\nAccount: {account}\nRule: {rule} ({trigger})\n");
    for d in &details {
        t.push_str(&format!("  {d}\n"));
    }
    if let Some(link) = &link {
        t.push_str(&format!("\nOpen the account: {link}\n"));
    }
    t.push_str(&format!(
        "\n--\nYou receive this because alert rule \"{rule}\" emails you. Stop alert emails: {unsubscribe}\n"
    ));

    let mut h = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif;color:#111\">\
         <h2 style=\"margin:0 0 12px\">{}</h2>\
         <p><strong>Account:</strong> {}<br><strong>Rule:</strong> {} ({})</p>",
        esc(&title),
        esc(&account),
        esc(&rule),
        esc(&trigger)
    );
    if !details.is_empty() {
        h.push_str("<ul>");
        for d in &details {
            h.push_str(&format!("<li>{}</li>", esc(d)));
        }
        h.push_str("</ul>");
    }
    if let Some(link) = &link {
        h.push_str(&format!(
            "<p><a href=\"{}\" style=\"background:#2563eb;color:#fff;padding:8px 14px;border-radius:6px;text-decoration:none\">Open the account</a></p>",
            esc(link)
        ));
    }
    h.push_str(&format!(
        "<hr><p style=\"font-size:12px;color:#666\">You receive this because alert rule \
         &ldquo;{}&rdquo; emails you. <a href=\"{}\">Unsubscribe from alert emails</a>.</p></body></html>",
        esc(&rule),
        esc(unsubscribe)
    ));
    Email {
        to: to.to_owned(),
        subject: format!("[DevSignal] {title}"),
        text: t,
        html: Some(h),
        unsubscribe: Some(unsubscribe.to_owned()),
    }
}

/// An alert as a Slack incoming-webhook message: a text fallback and Block Kit blocks.
pub fn alert_slack(content: &Value, frontend_url: &str) -> Value {
    let title = text(content, "title");
    let account = text(content, "accountName");
    let rule = text(content, "ruleName");
    let trigger = text(content, "trigger");
    let details = detail_lines(content);
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*Account*\n{}", slack_esc(&account))}),
        json!({"type": "mrkdwn", "text": format!("*Rule*\n{} ({})", slack_esc(&rule), trigger)}),
    ];
    for d in details.iter().take(8) {
        fields.push(json!({"type": "mrkdwn", "text": slack_esc(d)}));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": title.chars().take(150).collect::<String>(), "emoji": true}}),
        json!({"type": "section", "fields": fields}),
    ];
    if let Some(link) = account_link(frontend_url, content) {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": "Open the account"},
                "url": link,
                "action_id": "open_account"
            }]
        }));
    }
    json!({"text": format!("{title} ({account})"), "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_links_are_there() {
        let c = json!({
            "title": "Score of <Acme> crossed 70",
            "accountName": "Acme & Co",
            "accountId": "0190",
            "ruleName": "Hot",
            "trigger": "SCORE_THRESHOLD",
            "details": {"score": 72, "threshold": 70}
        });
        let e = alert_email(
            &c,
            "a@b.c",
            "https://app.example/",
            "https://api.example/u?t=1",
        );
        let html = e.html.unwrap();
        assert!(html.contains("Score of &lt;Acme&gt; crossed 70"));
        assert!(html.contains("Acme &amp; Co"));
        assert!(html.contains("https://app.example/accounts/0190"));
        assert!(e.text.contains("score: 72"));
        assert_eq!(e.subject, "[DevSignal] Score of <Acme> crossed 70");
        let s = alert_slack(&c, "https://app.example");
        assert_eq!(s["blocks"][0]["type"], "header");
        assert_eq!(
            s["blocks"][2]["elements"][0]["url"],
            "https://app.example/accounts/0190"
        );
        assert!(
            s["blocks"][1]["fields"][0]["text"]
                .as_str()
                .unwrap()
                .contains("Acme &amp; Co")
        );
    }
}
