//! The event types of the log: one enum, spelled on the wire exactly as the log stores them.

use std::fmt;

/// Every event type the log carries, in the order they were introduced. Webhook endpoints and
/// subscriptions filter on their wire names ([`EventType::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    CompanyCreated,
    CompanyUpdated,
    CompanyDeleted,
    ContactCreated,
    ContactUpdated,
    ContactDeleted,
    ContactMerged,
    DealCreated,
    DealUpdated,
    DealDeleted,
    DealStageChanged,
    ActivityCreated,
    ActivityUpdated,
    ActivityDeleted,
    SignalCreated,
    ScoreChanged,
    TierChanged,
    AnomalyDetected,
    AlertTriggered,
    WebhookEndpointDisabled,
    ContactUnmerged,
    PackageDownloadsSpike,
    PackageReleased,
    UsageWarning,
    ImportProgress,
}

impl EventType {
    /// Every type, in the order they were introduced.
    pub const ALL: &[EventType] = &[
        EventType::CompanyCreated,
        EventType::CompanyUpdated,
        EventType::CompanyDeleted,
        EventType::ContactCreated,
        EventType::ContactUpdated,
        EventType::ContactDeleted,
        EventType::ContactMerged,
        EventType::DealCreated,
        EventType::DealUpdated,
        EventType::DealDeleted,
        EventType::DealStageChanged,
        EventType::ActivityCreated,
        EventType::ActivityUpdated,
        EventType::ActivityDeleted,
        EventType::SignalCreated,
        EventType::ScoreChanged,
        EventType::TierChanged,
        EventType::AnomalyDetected,
        EventType::AlertTriggered,
        EventType::WebhookEndpointDisabled,
        EventType::ContactUnmerged,
        EventType::PackageDownloadsSpike,
        EventType::PackageReleased,
        EventType::UsageWarning,
        EventType::ImportProgress,
    ];

    /// The wire name (`company.created`, `score.changed`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::CompanyCreated => "company.created",
            EventType::CompanyUpdated => "company.updated",
            EventType::CompanyDeleted => "company.deleted",
            EventType::ContactCreated => "contact.created",
            EventType::ContactUpdated => "contact.updated",
            EventType::ContactDeleted => "contact.deleted",
            EventType::ContactMerged => "contact.merged",
            EventType::DealCreated => "deal.created",
            EventType::DealUpdated => "deal.updated",
            EventType::DealDeleted => "deal.deleted",
            EventType::DealStageChanged => "deal.stage_changed",
            EventType::ActivityCreated => "activity.created",
            EventType::ActivityUpdated => "activity.updated",
            EventType::ActivityDeleted => "activity.deleted",
            EventType::SignalCreated => "signal.created",
            EventType::ScoreChanged => "score.changed",
            EventType::TierChanged => "tier.changed",
            EventType::AnomalyDetected => "anomaly.detected",
            EventType::AlertTriggered => "alert.triggered",
            EventType::WebhookEndpointDisabled => "webhook.endpoint_disabled",
            EventType::ContactUnmerged => "contact.unmerged",
            EventType::PackageDownloadsSpike => "package.downloads_spike",
            EventType::PackageReleased => "package.released",
            EventType::UsageWarning => "organization.usage_warning",
            EventType::ImportProgress => "import.progress",
        }
    }

    /// The type called `s` on the wire, if there is one.
    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.iter().copied().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The wire names of [`EventType::ALL`], in the same order.
pub const TYPES: &[&str] = &[
    EventType::CompanyCreated.as_str(),
    EventType::CompanyUpdated.as_str(),
    EventType::CompanyDeleted.as_str(),
    EventType::ContactCreated.as_str(),
    EventType::ContactUpdated.as_str(),
    EventType::ContactDeleted.as_str(),
    EventType::ContactMerged.as_str(),
    EventType::DealCreated.as_str(),
    EventType::DealUpdated.as_str(),
    EventType::DealDeleted.as_str(),
    EventType::DealStageChanged.as_str(),
    EventType::ActivityCreated.as_str(),
    EventType::ActivityUpdated.as_str(),
    EventType::ActivityDeleted.as_str(),
    EventType::SignalCreated.as_str(),
    EventType::ScoreChanged.as_str(),
    EventType::TierChanged.as_str(),
    EventType::AnomalyDetected.as_str(),
    EventType::AlertTriggered.as_str(),
    EventType::WebhookEndpointDisabled.as_str(),
    EventType::ContactUnmerged.as_str(),
    EventType::PackageDownloadsSpike.as_str(),
    EventType::PackageReleased.as_str(),
    EventType::UsageWarning.as_str(),
    EventType::ImportProgress.as_str(),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_and_are_unique() {
        assert_eq!(TYPES.len(), EventType::ALL.len());
        for (t, s) in EventType::ALL.iter().zip(TYPES) {
            assert_eq!(t.as_str(), *s);
            assert_eq!(EventType::parse(s), Some(*t));
        }
        let mut names = TYPES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TYPES.len());
        assert_eq!(
            EventType::parse("score.changed"),
            Some(EventType::ScoreChanged)
        );
        assert_eq!(EventType::parse("nope"), None);
    }
}
