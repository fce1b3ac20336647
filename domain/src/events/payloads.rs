//! The payloads of the log's events, one struct per payload, serialised and decoded in one place
//! ([`Payload`]), so the writer, live subscriptions, webhooks and jobs read the same fields. The
//! JSON is what the log has always stored: camelCase keys, ids and times as strings.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{Event, EventType};

/// A typed event payload.
pub trait Payload: Serialize + DeserializeOwned {
    /// The event types whose events carry this payload.
    const TYPES: &'static [EventType];

    /// The JSON stored in the log.
    fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The payload of `event`, when it is of one of [`Payload::TYPES`] and well-formed.
    fn decode(event: &Event) -> Option<Self> {
        let t = EventType::parse(&event.event_type)?;
        if !Self::TYPES.contains(&t) {
            return None;
        }
        serde_json::from_value(event.payload.clone()).ok()
    }
}

/// `score.changed` (the score moved, or was first computed) and `tier.changed` (the tier moved,
/// or was first given: then `oldTier` is null): one account's score before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreChanged {
    pub account_id: Uuid,
    pub account_name: String,
    /// Null the first time the account is scored.
    pub old_score: Option<i32>,
    pub new_score: i32,
    /// Null the first time the account is scored.
    pub old_tier: Option<String>,
    pub new_tier: String,
    /// `newScore − oldScore` (the new score the first time).
    pub delta: i32,
    /// RISING, FALLING or STABLE.
    pub trend: String,
    pub computed_at: DateTime<Utc>,
}

impl Payload for ScoreChanged {
    const TYPES: &'static [EventType] = &[EventType::ScoreChanged, EventType::TierChanged];
}

/// `signal.created`: the stored signal without its metadata, plus its account's tier when it was
/// ingested. The metadata (the bulk of a signal, up to 64 KB) stays in `signals` only, so the
/// log is not a second copy of every signal: consumers that hand it out (webhook deliveries, the
/// `signalCreated` subscription) read it from the signal. Events written before carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalCreated {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub signal_type: String,
    pub source_id: Uuid,
    pub contact_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub anonymous_id: Option<String>,
    /// Only in events written before payloads went lean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    pub idempotency_key: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub account_tier: Option<String>,
}

impl Payload for SignalCreated {
    const TYPES: &'static [EventType] = &[EventType::SignalCreated];
}

/// `anomaly.detected`: an account's signals today far above (SPIKE) or below (DROP) its
/// 30-day baseline (`domain::anomalies`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyDetected {
    /// The recorded anomaly.
    pub id: Uuid,
    pub account_id: Uuid,
    pub account_name: String,
    /// SPIKE or DROP.
    pub kind: String,
    /// MODERATE or HIGH.
    pub severity: String,
    /// The UTC day judged.
    pub day: chrono::NaiveDate,
    pub today_count: i64,
    pub mean: f64,
    pub stddev: f64,
    pub z_score: f64,
    pub expected_min: i64,
    pub expected_max: i64,
    pub detected_at: DateTime<Utc>,
}

impl AnomalyDetected {
    /// The payload announcing `row`, an anomaly of the account called `account_name`.
    pub fn of(row: &entity::anomalies::Model, account_name: &str) -> Self {
        AnomalyDetected {
            id: row.id,
            account_id: row.account_id,
            account_name: account_name.to_owned(),
            kind: row.kind.clone(),
            severity: row.severity.clone(),
            day: row.day,
            today_count: row.today_count,
            mean: row.mean,
            stddev: row.stddev,
            z_score: row.z_score,
            expected_min: row.expected_min,
            expected_max: row.expected_max,
            detected_at: row.detected_at,
        }
    }
}

impl Payload for AnomalyDetected {
    const TYPES: &'static [EventType] = &[EventType::AnomalyDetected];
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn score_changed_keeps_its_wire_shape() {
        let at: DateTime<Utc> = "2026-01-02T03:04:05Z".parse().unwrap();
        let id = Uuid::from_u128(7);
        let p = ScoreChanged {
            account_id: id,
            account_name: "Acme".into(),
            old_score: None,
            new_score: 40,
            old_tier: None,
            new_tier: "COLD".into(),
            delta: 40,
            trend: "STABLE".into(),
            computed_at: at,
        };
        let v = p.to_value();
        assert_eq!(
            v,
            json!({
                "accountId": id, "accountName": "Acme", "oldScore": null, "newScore": 40,
                "oldTier": null, "newTier": "COLD", "delta": 40, "trend": "STABLE",
                "computedAt": at,
            })
        );
        let event = |t: &str| Event {
            seq: 1,
            id: Uuid::from_u128(1),
            organization_id: Uuid::from_u128(2),
            event_type: t.into(),
            payload: v.clone(),
            actor_user_id: None,
            actor_api_key_id: None,
            occurred_at: at,
        };
        assert_eq!(ScoreChanged::decode(&event("tier.changed")), Some(p));
        assert_eq!(ScoreChanged::decode(&event("signal.created")), None);
    }
}
