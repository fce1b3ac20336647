//! The signal-type vocabulary: one spelling per kind of event. Senders spell the same event many
//! ways (`docs_view`, `Docs Viewed`, Segment's `Page Viewed`, the original's `github_star`);
//! ingest stores the canonical type ([`canonical`]), so a spelling neither decays at the
//! default rate nor counts as one more "feature" in scoring. The scorer reads stored types
//! through [`canonical`] too, so rows stored before an alias existed count as their event.
//!
//! A type is matched on its *key*: trimmed, lower-case, a leading `$` dropped (PostHog's
//! `$pageview`), and each run of spaces, `-`, `.` or `/` made one `_`. A key that is a
//! [`VOCABULARY`] type is that type; a key that is an [`ALIASES`] entry is its target; any other
//! type is stored as sent (trimmed): custom events keep their names.

/// The canonical types DevSignal knows, with what each means. Their half-lives are
/// `scoring::HALF_LIVES` (a test keeps both lists equal).
pub const VOCABULARY: &[(&str, &str)] = &[
    ("signup", "created an account in the product"),
    ("demo_request", "asked for a demo"),
    ("app_installed", "installed the GitHub or marketplace app"),
    ("app_uninstalled", "uninstalled the app"),
    ("repo_fork", "forked a repository"),
    ("repo_star", "starred a repository"),
    ("repo_unstar", "removed a star"),
    ("repo_watch", "watched a repository"),
    ("repo_clone", "cloned a repository"),
    ("pr_opened", "opened a pull request"),
    ("pr_merged", "had a pull request merged"),
    ("pr_closed", "had a pull request closed unmerged"),
    ("issue_opened", "opened an issue"),
    ("issue_closed", "had an issue closed"),
    ("issue_comment", "commented on an issue or pull request"),
    ("code_push", "pushed commits"),
    ("release_published", "published a release"),
    ("package_install", "installed a package"),
    ("npm_download", "downloaded an npm package"),
    ("pypi_download", "downloaded a PyPI package"),
    ("api_call", "called the product's API"),
    ("feature_usage", "used a product feature"),
    ("feature_request", "asked for a feature"),
    ("pricing_page_view", "viewed the pricing page"),
    ("page_view", "viewed a page"),
    ("screen_view", "viewed an app screen"),
    ("docs_read", "read the documentation"),
    ("blog_read", "read a blog post"),
    ("community_post", "posted in a community"),
    ("support_ticket", "opened a support ticket"),
    ("social_mention", "mentioned the product on social media"),
    ("twitter_mention", "mentioned the product on Twitter/X"),
    ("twitter_praise", "praised the product on Twitter/X"),
    ("twitter_question", "asked about the product on Twitter/X"),
    (
        "twitter_complaint",
        "complained about the product on Twitter/X",
    ),
    ("discord_member_joined", "joined the Discord server"),
    ("discord_reaction", "reacted in Discord"),
    (
        "linkedin_company_follow",
        "followed the company on LinkedIn",
    ),
    ("linkedin_page_view", "viewed the company's LinkedIn page"),
    ("linkedin_post_engagement", "engaged with a LinkedIn post"),
    (
        "linkedin_employee_activity",
        "was active on LinkedIn as an employee of an account",
    ),
    ("discord_message", "posted in the Discord server"),
    (
        "discord_question_asked",
        "asked for help in the Discord server",
    ),
    (
        "discord_thread_created",
        "started a thread in the Discord server",
    ),
    (
        "stackoverflow_question",
        "asked about the product on Stack Overflow",
    ),
    (
        "stackoverflow_answer",
        "answered a question about the product on Stack Overflow",
    ),
    ("reddit_question", "asked about the product on Reddit"),
    ("reddit_discussion", "discussed the product on Reddit"),
    (
        "reddit_showcase",
        "showed a project built with the product on Reddit",
    ),
    (
        "intercom_conversation_open",
        "started a support conversation (Intercom)",
    ),
    (
        "intercom_conversation_reply",
        "replied in a support conversation (Intercom)",
    ),
    (
        "intercom_conversation_closed",
        "had a support conversation closed (Intercom)",
    ),
    (
        "intercom_conversation_rated",
        "rated a support conversation (Intercom)",
    ),
    (
        "zendesk_ticket_created",
        "opened a support ticket (Zendesk)",
    ),
    (
        "zendesk_ticket_updated",
        "had a support ticket updated (Zendesk)",
    ),
    (
        "zendesk_ticket_solved",
        "had a support ticket solved (Zendesk)",
    ),
    (
        "zendesk_satisfaction_rated",
        "rated the support they got (Zendesk)",
    ),
];

/// Other spellings of vocabulary types, by key (see the module docs): the original's
/// connector names, Segment's and PostHog's conventions, plurals and past tenses.
pub const ALIASES: &[(&str, &str)] = &[
    ("sign_up", "signup"),
    ("signed_up", "signup"),
    ("user_signed_up", "signup"),
    ("account_created", "signup"),
    ("demo_requested", "demo_request"),
    ("github_fork", "repo_fork"),
    ("fork", "repo_fork"),
    ("github_star", "repo_star"),
    ("star", "repo_star"),
    ("starred", "repo_star"),
    ("github_watch", "repo_watch"),
    ("pull_request", "pr_opened"),
    ("pull_request_opened", "pr_opened"),
    ("github_pr", "pr_opened"),
    ("pull_request_merged", "pr_merged"),
    ("github_issue", "issue_opened"),
    ("github_comment", "issue_comment"),
    ("github_commit", "code_push"),
    ("push", "code_push"),
    ("github_release", "release_published"),
    ("npm_downloads", "npm_download"),
    ("pypi_downloads", "pypi_download"),
    ("api_request", "api_call"),
    ("feature_used", "feature_usage"),
    ("pricing_viewed", "pricing_page_view"),
    ("pricing_page_viewed", "pricing_page_view"),
    ("page_viewed", "page_view"),
    ("pageview", "page_view"),
    ("screen_viewed", "screen_view"),
    ("docs_view", "docs_read"),
    ("docs_viewed", "docs_read"),
    ("docs_visit", "docs_read"),
    ("docs_page_view", "docs_read"),
    ("documentation_viewed", "docs_read"),
    ("blog_view", "blog_read"),
    ("blog_post_viewed", "blog_read"),
];

/// The key a type is matched on (see the module docs).
pub fn key(signal_type: &str) -> String {
    let t = signal_type.trim();
    let t = t.strip_prefix('$').unwrap_or(t);
    let mut out = String::with_capacity(t.len());
    let mut gap = false;
    for c in t.chars() {
        if c.is_whitespace() || matches!(c, '-' | '.' | '/' | '_') {
            gap = !out.is_empty();
        } else {
            if gap {
                out.push('_');
                gap = false;
            }
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The vocabulary type `signal_type` stands for, or the type as sent (trimmed) when it is not
/// one.
pub fn canonical(signal_type: &str) -> String {
    let k = key(signal_type);
    if let Some((t, _)) = VOCABULARY.iter().find(|(t, _)| *t == k) {
        return (*t).to_owned();
    }
    if let Some((_, t)) = ALIASES.iter().find(|(a, _)| *a == k) {
        return (*t).to_owned();
    }
    signal_type.trim().to_owned()
}

/// Every spelling a filter on `signal_type` should find: as given, its canonical type and that
/// type's aliases (rows stored before an alias existed keep their spelling).
pub fn spellings(signal_type: &str) -> Vec<String> {
    let c = canonical(signal_type);
    let mut out = vec![signal_type.trim().to_owned(), c.clone()];
    out.extend(
        ALIASES
            .iter()
            .filter(|(_, t)| *t == c)
            .map(|(a, _)| (*a).to_owned()),
    );
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_map_to_one_type_and_custom_events_keep_theirs() {
        for (sent, want) in [
            ("docs_view", "docs_read"),
            ("Docs Viewed", "docs_read"),
            ("Page Viewed", "page_view"),
            ("$pageview", "page_view"),
            ("page-view", "page_view"),
            ("REPO_STAR", "repo_star"),
            ("github_star", "repo_star"),
            ("Signed Up", "signup"),
            (" npm_downloads ", "npm_download"),
            ("Feature Activated", "Feature Activated"),
            ("my_custom_event", "my_custom_event"),
        ] {
            assert_eq!(canonical(sent), want, "{sent}");
        }
        assert_eq!(
            spellings("Page Viewed"),
            ["Page Viewed", "page_view", "page_viewed", "pageview"]
        );
    }

    #[test]
    fn every_vocabulary_type_has_a_half_life_and_nothing_else_does() {
        let mut vocabulary: Vec<&str> = VOCABULARY.iter().map(|(t, _)| *t).collect();
        let mut half_lives: Vec<&str> =
            crate::scoring::HALF_LIVES.iter().map(|(t, _)| *t).collect();
        vocabulary.sort();
        half_lives.sort();
        assert_eq!(vocabulary, half_lives);
    }

    #[test]
    fn aliases_point_into_the_vocabulary_and_never_shadow_it() {
        for (alias, target) in ALIASES {
            assert!(
                VOCABULARY.iter().any(|(t, _)| t == target),
                "{alias} → {target} is not a vocabulary type"
            );
            assert!(
                !VOCABULARY.iter().any(|(t, _)| t == alias),
                "{alias} is both"
            );
            assert_eq!(key(alias), *alias, "aliases are written as keys");
        }
    }
}
