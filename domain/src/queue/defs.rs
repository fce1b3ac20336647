//! Every job's definition — name, queue, attempts, backoff, whether it is per organization, what
//! it does — declared once, here, where both the domain (which enqueues some of them in its own
//! transactions) and the `jobs` crate (which pairs each with its handler in `registry::JOBS`)
//! see it. Enqueue with [`JobSpec::job`], never by spelling a name and a queue again.

use std::time::Duration;

use serde_json::Value;

use super::NewJob;

/// What a kind of job is, apart from the code that runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSpec {
    pub name: &'static str,
    pub queue: &'static str,
    /// Attempts, the first included.
    pub max_attempts: i32,
    /// The wait before the first retry; each next one waits twice as long (plus jitter).
    pub backoff_base: Duration,
    /// Needs `organizationId` (per-organization work, triggerable with `--org`).
    pub per_org: bool,
    pub description: &'static str,
}

impl JobSpec {
    /// A job of this kind carrying `payload`, with the spec's attempts and backoff.
    pub fn job(&self, payload: Value) -> NewJob {
        let mut job = NewJob::new(self.queue, self.name, payload);
        job.max_attempts = self.max_attempts;
        job.backoff_base = self.backoff_base;
        job
    }
}

macro_rules! spec {
    ($name:literal, $queue:literal, $attempts:literal, $backoff_secs:literal, $per_org:literal, $desc:literal) => {
        JobSpec {
            name: $name,
            queue: $queue,
            max_attempts: $attempts,
            backoff_base: Duration::from_secs($backoff_secs),
            per_org: $per_org,
            description: $desc,
        }
    };
}

/// Every queue a worker serves.
pub const QUEUES: &[&str] = &[
    "signal-processing",
    "score-computation",
    "webhook-delivery",
    "score-snapshot",
    "hubspot-sync",
    "salesforce-sync",
    "discord-sync",
    "stackoverflow-sync",
    "twitter-sync",
    "reddit-sync",
    "linkedin-sync",
    "posthog-sync",
    "signal-sync",
    "enrichment",
    "weekly-digest",
    "demo-cleanup",
    "alert-check",
    "anomaly-detection",
    "notification-delivery",
    "imports",
    "exports",
    "maintenance",
];

pub const SYNC_ALL_NPM: JobSpec = spec!(
    "sync-all-npm",
    "signal-sync",
    3,
    5,
    false,
    "npm download signals for every connected package"
);
pub const SYNC_ALL_PYPI: JobSpec = spec!(
    "sync-all-pypi",
    "signal-sync",
    3,
    5,
    false,
    "PyPI download signals for every connected package"
);
pub const HUBSPOT_SYNC_SCHEDULER: JobSpec = spec!(
    "hubspot-sync-scheduler",
    "hubspot-sync",
    3,
    10,
    false,
    "fans out HubSpot sync to connected organizations"
);
pub const SALESFORCE_SYNC_SCHEDULER: JobSpec = spec!(
    "salesforce-sync-scheduler",
    "salesforce-sync",
    3,
    10,
    false,
    "fans out Salesforce sync to connected organizations"
);
pub const HUBSPOT_SYNC: JobSpec = spec!(
    "hubspot-sync",
    "hubspot-sync",
    3,
    10,
    true,
    "a HubSpot sync of one organization now (payload fullSync: true re-reads and re-sends everything)"
);
pub const SALESFORCE_SYNC: JobSpec = spec!(
    "salesforce-sync",
    "salesforce-sync",
    3,
    10,
    true,
    "a Salesforce sync of one organization now (payload fullSync: true re-reads and re-sends everything)"
);
pub const DISCORD_SYNC_SCHEDULER: JobSpec = spec!(
    "discord-sync-scheduler",
    "discord-sync",
    3,
    5,
    false,
    "fans out Discord sync to connected organizations"
);
pub const STACKOVERFLOW_SYNC_SCHEDULER: JobSpec = spec!(
    "stackoverflow-sync-scheduler",
    "stackoverflow-sync",
    3,
    5,
    false,
    "fans out Stack Overflow sync to connected organizations"
);
pub const TWITTER_SYNC_SCHEDULER: JobSpec = spec!(
    "twitter-sync-scheduler",
    "twitter-sync",
    3,
    10,
    false,
    "fans out Twitter/X mention sync to connected organizations"
);
pub const REDDIT_SYNC_SCHEDULER: JobSpec = spec!(
    "reddit-sync-scheduler",
    "reddit-sync",
    3,
    5,
    false,
    "fans out Reddit mention sync to connected organizations"
);
pub const LINKEDIN_SYNC_SCHEDULER: JobSpec = spec!(
    "linkedin-sync-scheduler",
    "linkedin-sync",
    3,
    5,
    false,
    "fans out LinkedIn sync to connected organizations"
);
pub const POSTHOG_SYNC_SCHEDULER: JobSpec = spec!(
    "posthog-sync-scheduler",
    "posthog-sync",
    3,
    5,
    false,
    "fans out PostHog event sync to connected organizations"
);
pub const INTERCOM_SYNC_SCHEDULER: JobSpec = spec!(
    "intercom-sync-scheduler",
    "signal-sync",
    3,
    5,
    false,
    "fans out a sync to every due Intercom integration (not in the original's runbook)"
);
pub const ZENDESK_SYNC_SCHEDULER: JobSpec = spec!(
    "zendesk-sync-scheduler",
    "signal-sync",
    3,
    5,
    false,
    "fans out a sync to every due Zendesk integration (not in the original's runbook)"
);
pub const CLEARBIT_ENRICHMENT_SCHEDULER: JobSpec = spec!(
    "clearbit-enrichment-scheduler",
    "enrichment",
    2,
    5,
    false,
    "enriches companies missing Clearbit data"
);
pub const SCORE_SNAPSHOT_SCHEDULER: JobSpec = spec!(
    "score-snapshot-scheduler",
    "score-snapshot",
    3,
    5,
    false,
    "fans out a score snapshot to every organization"
);
pub const CAPTURE_SCORE_SNAPSHOT: JobSpec = spec!(
    "capture-score-snapshot",
    "score-snapshot",
    3,
    5,
    true,
    "recomputes every scored account of one organization (nightly, before the snapshot)"
);
pub const WEEKLY_DIGEST_SCHEDULER: JobSpec = spec!(
    "weekly-digest-scheduler",
    "weekly-digest",
    3,
    10,
    false,
    "fans out the weekly digest to every organization"
);
pub const SEND_WEEKLY_DIGEST: JobSpec = spec!(
    "send-weekly-digest",
    "weekly-digest",
    3,
    10,
    true,
    "sends one organization's weekly digest"
);
pub const DEMO_CLEANUP_SCHEDULER: JobSpec = spec!(
    "demo-cleanup-scheduler",
    "demo-cleanup",
    3,
    5,
    false,
    "deletes demo organizations older than 24 hours"
);
pub const PARTITION_MAINTENANCE: JobSpec = spec!(
    "partition-maintenance",
    "maintenance",
    3,
    60,
    false,
    "keeps monthly partitions of signals and events ahead of time (PostgreSQL) and applies SIGNAL_RETENTION_MONTHS and EVENT_RETENTION_MONTHS; deletes signal intake receipts processed over a week ago"
);
pub const ALERT_CHECK_SCHEDULER: JobSpec = spec!(
    "alert-check-scheduler",
    "alert-check",
    3,
    5,
    false,
    "checks the time-based alert rules (ACCOUNT_INACTIVE, ENGAGEMENT_DROP) of every organization"
);
pub const ANOMALY_DETECTION_SCHEDULER: JobSpec = spec!(
    "anomaly-detection-scheduler",
    "anomaly-detection",
    3,
    5,
    false,
    "fans out anomaly detection to every non-demo organization"
);
pub const DETECT_ANOMALIES: JobSpec = spec!(
    "detect-anomalies",
    "anomaly-detection",
    3,
    5,
    true,
    "detects signal anomalies of one organization"
);
pub const DELIVER_WEBHOOK: JobSpec = spec!(
    "deliver-webhook",
    "webhook-delivery",
    5,
    30,
    true,
    "sends a failed webhook delivery again (retry-failed webhook-delivery)"
);
pub const DELIVER_NOTIFICATION: JobSpec = spec!(
    "deliver-notification",
    "notification-delivery",
    8,
    5,
    true,
    "sends one alert or digest email, or one Slack post, recorded in alert_deliveries (retried alone)"
);
pub const COMPUTE_SCORE: JobSpec = spec!(
    "compute-score",
    "score-computation",
    3,
    2,
    true,
    "recomputes the PQA scores of one organization's changed accounts (debounced after new signals)"
);
pub const RECOMPUTE_SCORES: JobSpec = spec!(
    "recompute-scores",
    "score-computation",
    5,
    2,
    true,
    "recomputes every scorable account of one organization in chunks, resumably (recomputeScores; payload recomputeId)"
);
pub const IMPORT_CSV: JobSpec = spec!(
    "import-csv",
    "imports",
    5,
    5,
    true,
    "writes an uploaded CSV file's rows in batches, resuming after the last committed batch (startImport; payload importId)"
);
pub const EXPORT_DATA: JobSpec = spec!(
    "export-data",
    "exports",
    3,
    5,
    true,
    "writes an organization's data to a CSV or JSON-lines file under DATA_DIR/exports (exportData; payload exportId)"
);
pub const GITHUB_SYNC_SCHEDULER: JobSpec = spec!(
    "github-sync-scheduler",
    "signal-sync",
    3,
    5,
    false,
    "fans out a sync to every due GitHub integration"
);
pub const SYNC_INTEGRATION: JobSpec = spec!(
    "sync-integration",
    "signal-sync",
    3,
    30,
    true,
    "one sync run of one integration (cron fan-out, syncIntegration, or continuation after a rate limit)"
);
pub const NOOP: JobSpec = spec!(
    "noop",
    "signal-processing",
    1,
    1,
    false,
    "does nothing (benchmarks and smoke tests)"
);

/// Every spec above.
pub const ALL: &[JobSpec] = &[
    SYNC_ALL_NPM,
    SYNC_ALL_PYPI,
    HUBSPOT_SYNC_SCHEDULER,
    SALESFORCE_SYNC_SCHEDULER,
    HUBSPOT_SYNC,
    SALESFORCE_SYNC,
    DISCORD_SYNC_SCHEDULER,
    STACKOVERFLOW_SYNC_SCHEDULER,
    TWITTER_SYNC_SCHEDULER,
    REDDIT_SYNC_SCHEDULER,
    LINKEDIN_SYNC_SCHEDULER,
    POSTHOG_SYNC_SCHEDULER,
    INTERCOM_SYNC_SCHEDULER,
    ZENDESK_SYNC_SCHEDULER,
    CLEARBIT_ENRICHMENT_SCHEDULER,
    SCORE_SNAPSHOT_SCHEDULER,
    CAPTURE_SCORE_SNAPSHOT,
    WEEKLY_DIGEST_SCHEDULER,
    SEND_WEEKLY_DIGEST,
    DEMO_CLEANUP_SCHEDULER,
    PARTITION_MAINTENANCE,
    ALERT_CHECK_SCHEDULER,
    ANOMALY_DETECTION_SCHEDULER,
    DETECT_ANOMALIES,
    DELIVER_WEBHOOK,
    DELIVER_NOTIFICATION,
    COMPUTE_SCORE,
    RECOMPUTE_SCORES,
    IMPORT_CSV,
    EXPORT_DATA,
    GITHUB_SYNC_SCHEDULER,
    SYNC_INTEGRATION,
    NOOP,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_queues_known() {
        let mut names: Vec<&str> = ALL.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for s in ALL {
            assert!(
                QUEUES.contains(&s.queue),
                "{} runs on unknown queue {}",
                s.name,
                s.queue
            );
            assert!(s.max_attempts >= 1, "{}", s.name);
        }
    }

    #[test]
    fn a_spec_builds_its_job() {
        let j = COMPUTE_SCORE.job(serde_json::json!({"x": 1}));
        assert_eq!(
            (j.queue.as_str(), j.name.as_str()),
            ("score-computation", "compute-score")
        );
        assert_eq!(j.max_attempts, 3);
        assert_eq!(j.backoff_base, Duration::from_secs(2));
    }
}
