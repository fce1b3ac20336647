//! Identity normalisation: how emails, handles and domains are
//! compared, which email domains are free mail, and the confidence of each kind of match.
//! Identities are unique per (organization, kind, normalised value).

/// Identity kinds stored in `contact_identities.kind`.
pub mod kind {
    pub const EMAIL: &str = "EMAIL";
    pub const GITHUB: &str = "GITHUB";
    pub const NPM: &str = "NPM";
    pub const TWITTER: &str = "TWITTER";
    pub const LINKEDIN: &str = "LINKEDIN";
    pub const DOMAIN: &str = "DOMAIN";
    /// The `userId` a customer's product gives the person (Segment-compatible calls).
    pub const SEGMENT: &str = "SEGMENT";
    /// A Stack Exchange user id.
    pub const STACKOVERFLOW: &str = "STACKOVERFLOW";
    /// A Reddit user name (lower case).
    pub const REDDIT: &str = "REDDIT";
    /// A Discord user id (snowflake).
    pub const DISCORD: &str = "DISCORD";
    /// A PostHog `distinct_id` (the customer's product id for the person, or an anonymous id).
    pub const POSTHOG: &str = "POSTHOG";
    /// An Intercom contact id.
    pub const INTERCOM: &str = "INTERCOM";
    /// A Zendesk user id.
    pub const ZENDESK: &str = "ZENDESK";

    /// Identities a connector may attach to an actor ([`crate::signals::ActorHints::source_ids`]).
    pub const SOURCE_IDS: &[&str] = &[STACKOVERFLOW, REDDIT, DISCORD, POSTHOG, INTERCOM, ZENDESK];

    /// Kinds that only find a person already known and never create one on their own: a
    /// product's own ids may be anonymous visitors, and a support desk's bare user id names
    /// nobody (its email does).
    pub const NOT_NAMEABLE: &[&str] = &[SEGMENT, POSTHOG, INTERCOM, ZENDESK];
}

/// Confidence of each way a contact or account is found.
pub mod confidence {
    pub const EXACT_EMAIL: f64 = 1.0;
    pub const GITHUB: f64 = 0.95;
    pub const NPM: f64 = 0.95;
    pub const SOCIAL: f64 = 0.9;
    pub const GITHUB_ORG: f64 = 0.85;
    pub const DOMAIN: f64 = 0.8;
    pub const NEW_CONTACT: f64 = 0.8;
    /// The same full name at the same account (merge suggestions only).
    pub const NAME_AT_ACCOUNT: f64 = 0.7;
    /// The same full name alone (merge suggestions only).
    pub const NAME: f64 = 0.5;
    /// Auto-merge needs at least this much.
    pub const AUTO_MERGE: f64 = 0.8;
    /// Identities at least this certain are marked verified.
    pub const VERIFIED: f64 = 0.95;
}

/// Free-mail and disposable domains: an email at one of these says nothing about the company.
/// One list for every path (the original had three).
pub const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "yahoo.co.in",
    "yahoo.fr",
    "yahoo.de",
    "yahoo.co.jp",
    "ymail.com",
    "hotmail.com",
    "hotmail.co.uk",
    "hotmail.fr",
    "hotmail.de",
    "outlook.com",
    "outlook.fr",
    "outlook.de",
    "live.com",
    "live.co.uk",
    "live.fr",
    "msn.com",
    "protonmail.com",
    "protonmail.ch",
    "proton.me",
    "pm.me",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "mail.com",
    "zoho.com",
    "zohomail.com",
    "fastmail.com",
    "fastmail.fm",
    "hey.com",
    "tutanota.com",
    "tutanota.de",
    "tuta.io",
    "tuta.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "qq.com",
    "163.com",
    "126.com",
    "sina.com",
    "naver.com",
    "daum.net",
    "hanmail.net",
    "att.net",
    "sbcglobal.net",
    "comcast.net",
    "verizon.net",
    "cox.net",
    "charter.net",
    "earthlink.net",
    "optonline.net",
    "frontier.com",
    "mailinator.com",
    "guerrillamail.com",
    "guerrillamail.net",
    "tempmail.com",
    "throwaway.email",
    "sharklasers.com",
    "grr.la",
    "dispostable.com",
    "yopmail.com",
    "users.noreply.github.com",
];

/// `true` for free-mail and disposable domains.
pub fn is_free_mail(domain: &str) -> bool {
    FREE_MAIL.contains(&domain)
}

/// A trimmed, lower-cased email, or `None` if it is not one.
pub fn email(raw: &str) -> Option<String> {
    let e = raw.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.contains(char::is_whitespace)
        && e.len() <= 254;
    ok.then_some(e)
}

/// The GitHub login behind a noreply address (`login@users.noreply.github.com` or
/// `12345+login@users.noreply.github.com`).
pub fn github_noreply_login(email: &str) -> Option<String> {
    let local = email.strip_suffix("@users.noreply.github.com")?;
    let login = local.split_once('+').map_or(local, |(_, l)| l);
    handle(login)
}

/// A handle (GitHub login, npm user, Twitter/X handle): trimmed, without a leading `@` or a
/// profile URL, lower-cased. `None` when nothing usable is left.
pub fn handle(raw: &str) -> Option<String> {
    let mut h = raw.trim();
    for prefix in [
        "https://",
        "http://",
        "www.",
        "github.com/",
        "twitter.com/",
        "x.com/",
        "npmjs.com/~",
        "www.npmjs.com/~",
    ] {
        if let Some(rest) = h.strip_prefix(prefix) {
            h = rest;
        }
    }
    let h = h.trim_start_matches('@').trim_end_matches('/');
    let h = h.split(['/', '?', '#']).next().unwrap_or("");
    let ok = !h.is_empty()
        && h.len() <= 100
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then(|| h.to_lowercase())
}

/// A LinkedIn profile reduced to its public identifier (`https://www.linkedin.com/in/jane-doe/`
/// → `jane-doe`); anything else is kept lower-cased.
pub fn linkedin(raw: &str) -> Option<String> {
    let l = raw.trim().to_lowercase();
    let l = l
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_start_matches("www.")
        .trim_start_matches("linkedin.com/in/")
        .trim_end_matches('/');
    (!l.is_empty() && l.len() <= 300).then(|| l.to_owned())
}

/// A bare domain from a domain, URL or email domain: lower-cased, without scheme, `www.`,
/// port, path or trailing dot. `None` when it does not look like a domain.
pub fn domain(raw: &str) -> Option<String> {
    let d = raw.trim().to_lowercase();
    let d = d
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_start_matches("www.");
    let d = d
        .split(['/', '?', '#', ':'])
        .next()
        .unwrap_or("")
        .trim_end_matches('.');
    let ok = d.contains('.')
        && d.len() <= 253
        && !d.starts_with('.')
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
    ok.then(|| d.to_owned())
}

/// The company domain an email speaks for: its domain unless that is free mail.
pub fn company_domain_of_email(email: &str) -> Option<String> {
    let d = email.rsplit_once('@')?.1;
    if is_free_mail(d) { None } else { domain(d) }
}

/// The name given to an account created from a domain: its first label, capitalised
/// (`acme.io` → `Acme`).
pub fn name_from_domain(domain: &str) -> String {
    let label = domain.split('.').next().unwrap_or(domain);
    let mut c = label.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => domain.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(email(" Jane@Acme.IO ").as_deref(), Some("jane@acme.io"));
        assert_eq!(email("nope"), None);
        assert_eq!(email("a@b"), None);
        assert_eq!(email("a b@c.io"), None);
    }

    #[test]
    fn github_noreply_addresses_resolve_to_the_login() {
        assert_eq!(
            github_noreply_login("12345+Octo-Cat@users.noreply.github.com").as_deref(),
            Some("octo-cat")
        );
        assert_eq!(
            github_noreply_login("octocat@users.noreply.github.com").as_deref(),
            Some("octocat")
        );
        assert_eq!(github_noreply_login("octocat@github.com"), None);
    }

    #[test]
    fn handles_drop_at_signs_urls_and_case() {
        assert_eq!(handle("@OctoCat").as_deref(), Some("octocat"));
        assert_eq!(
            handle("https://github.com/OctoCat/").as_deref(),
            Some("octocat")
        );
        assert_eq!(handle("x.com/Jane_Doe").as_deref(), Some("jane_doe"));
        assert_eq!(handle("   "), None);
        assert_eq!(handle("bad handle"), None);
        assert_eq!(
            linkedin("https://www.linkedin.com/in/Jane-Doe/").as_deref(),
            Some("jane-doe")
        );
    }

    #[test]
    fn domains_and_free_mail() {
        assert_eq!(
            domain("https://www.Acme.io/about").as_deref(),
            Some("acme.io")
        );
        assert_eq!(domain("acme"), None);
        assert_eq!(company_domain_of_email("jane@gmail.com"), None);
        assert_eq!(
            company_domain_of_email("jane@acme.io").as_deref(),
            Some("acme.io")
        );
        assert_eq!(name_from_domain("acme.io"), "Acme");
    }
}
