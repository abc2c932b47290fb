//! Delivery: sends what the evaluator put in the outbox.
//!
//! It runs in the one control-api process that leads the `alerts` job, as a task
//! of its own started each second when the previous round has ended. Each round
//! takes the due entries, sends each through its channel (a few at once, each
//! bounded by `alerts.delivery_timeout_secs`), and marks an entry sent only after
//! the receiver accepted it; a failure is retried with exponential backoff (2 s,
//! 4 s, ... at most 5 min) up to `alerts.max_delivery_attempts`, and shown as the
//! channel's `last_delivery`. Evaluation never waits for any of it.
//!
//! A process that dies between the receiver's answer and the mark sends that
//! notification once more from the next leader (at least once); receivers can drop
//! the repeat by its `dedupe_key`.

use std::collections::HashMap;

use futures::StreamExt;
use logpool_engines::metadata::{AlertObjectKind, MetadataError, OutboxEntry, OutboxOutcome};
use logpool_wire::alerts::{ChannelBody, Notification};

use super::super::channels::{parse_channel, record_delivery};
use super::super::now_ms;
use crate::ControlState;

/// Entries taken per round.
const BATCH: u32 = 100;
/// Deliveries in flight at once.
const CONCURRENCY: usize = 8;
/// Longest wait between two attempts.
const MAX_BACKOFF_MS: i64 = 300_000;

/// The wait before the attempt after `attempts` failed ones.
pub fn backoff_ms(attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    2_000i64
        .saturating_mul(1i64 << exponent)
        .min(MAX_BACKOFF_MS)
}

/// Sends every due outbox entry once.
///
/// # Errors
/// When the store cannot be read; failed deliveries are recorded, not returned.
pub async fn deliver_due(state: &ControlState) -> Result<(), MetadataError> {
    let due = state.metadata.due_outbox(now_ms(), BATCH).await?;
    if due.is_empty() {
        return Ok(());
    }
    let channels: HashMap<i64, ChannelBody> = state
        .metadata
        .all_alert_objects(AlertObjectKind::Channel)
        .await?
        .iter()
        .filter_map(|object| Some((object.id, parse_channel(object).ok()?)))
        .collect();
    futures::stream::iter(due)
        .for_each_concurrent(CONCURRENCY, |entry| {
            let channel = channels.get(&entry.channel_id);
            deliver_one(state, entry, channel)
        })
        .await;
    Ok(())
}

async fn deliver_one(state: &ControlState, entry: OutboxEntry, channel: Option<&ChannelBody>) {
    let outcome = match (
        channel,
        serde_json::from_str::<Notification>(&entry.payload),
    ) {
        (None, _) => OutboxOutcome::GiveUp {
            error: "the channel was deleted".to_string(),
        },
        (_, Err(error)) => OutboxOutcome::GiveUp {
            error: format!("unreadable notification: {error}"),
        },
        (Some(channel), Ok(notification)) => {
            let delivered = state.notifier.deliver(channel, &notification).await;
            record_delivery(state, entry.channel_id, &delivered).await;
            let attempts = entry.attempts + 1;
            match delivered.error {
                None => OutboxOutcome::Sent { at_ms: now_ms() },
                Some(error) if attempts >= i64::from(state.alerts.max_delivery_attempts) => {
                    tracing::warn!(%error, dedupe_key = %entry.dedupe_key, "alert notification given up");
                    OutboxOutcome::GiveUp { error }
                }
                Some(error) => OutboxOutcome::Retry {
                    next_attempt_ms: now_ms() + backoff_ms(entry.attempts),
                    error,
                },
            }
        }
    };
    if let Err(error) = state
        .metadata
        .finish_outbox_attempt(entry.id, &outcome)
        .await
    {
        tracing::warn!(%error, dedupe_key = %entry.dedupe_key, "failed to record a delivery attempt");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff_ms(0), 2_000);
        assert_eq!(backoff_ms(1), 4_000);
        assert_eq!(backoff_ms(3), 16_000);
        assert_eq!(backoff_ms(8), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(1_000), MAX_BACKOFF_MS);
    }
}
