//! Alerts: rules, channels and silences per project, and the evaluator's state, its
//! history of transitions and its outbox of notifications.
//!
//! What a user wrote is kept as one JSON document per object, checked by the API
//! before it is stored; the store only keeps it, with the owning project, so that
//! the document can grow fields without a migration. Next to it, `status` is what
//! the server writes back (a rule's last evaluation error, a channel's last
//! delivery), so a user's edit never overwrites the server's report or the reverse.
//!
//! # Guarantees the evaluator builds on
//! - [`AlertStore::record_alert_evaluation`] writes a rule's new states, its
//!   transitions and the notifications they cause in one transaction: a process that
//!   dies mid-way leaves either all of them or none.
//! - The outbox is unique per (channel, dedupe key): enqueueing the same firing twice
//!   (two leaders for a moment, a retried round) stores it once.
//! - An outbox entry is pending until [`AlertStore::finish_outbox_attempt`] marks it
//!   sent, so a notification is sent at least once whichever process delivers it.

use std::fmt::Debug;

use async_trait::async_trait;
use serde::Serialize;

use super::MetadataResult;

/// The three kinds of alert objects a project holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AlertObjectKind {
    /// An alert rule.
    Rule,
    /// A notification channel.
    Channel,
    /// A silence.
    Silence,
}

impl AlertObjectKind {
    /// The table that holds this kind.
    pub(crate) fn table(self) -> &'static str {
        match self {
            AlertObjectKind::Rule => "alert_rules",
            AlertObjectKind::Channel => "alert_channels",
            AlertObjectKind::Silence => "alert_silences",
        }
    }

    /// The name of the kind in messages ("alert rule").
    pub fn label(self) -> &'static str {
        match self {
            AlertObjectKind::Rule => "alert rule",
            AlertObjectKind::Channel => "alert channel",
            AlertObjectKind::Silence => "alert silence",
        }
    }
}

/// A stored rule, channel or silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertObject {
    /// Database id, never reused; names the object in paths.
    pub id: i64,
    /// What it is.
    pub kind: AlertObjectKind,
    /// Owning tenant.
    pub tenant: String,
    /// Owning project.
    pub project: String,
    /// What the user wrote, as JSON.
    pub doc: String,
    /// What the server wrote back, as JSON (empty for nothing yet).
    pub status: String,
    /// Id of the key that created it.
    pub created_by: String,
    /// Id of the key that changed it last.
    pub updated_by: String,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Last change, ms since the epoch.
    pub updated_at_ms: i64,
}

/// The evaluator's state of one rule and group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertGroupState {
    /// The group's value (empty for a rule without groups).
    pub group: String,
    /// The evaluator's state, as JSON.
    pub doc: String,
}

/// One transition of one group, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertTransitionRecord {
    /// The group (empty for a rule without groups).
    pub group: String,
    /// The transition, as JSON.
    pub doc: String,
    /// When it happened, ms since the epoch.
    pub at_ms: i64,
}

/// A notification to enqueue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewOutboxEntry {
    /// The channel to send it through.
    pub channel_id: i64,
    /// Unique per rule, group, firing and status: the same key is stored once.
    pub dedupe_key: String,
    /// The notification, as JSON.
    pub payload: String,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    /// Database id.
    pub id: i64,
    /// The rule that caused it.
    pub rule_id: i64,
    /// The channel to send it through.
    pub channel_id: i64,
    /// Its dedupe key.
    pub dedupe_key: String,
    /// The notification, as JSON.
    pub payload: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// When it was enqueued, ms since the epoch.
    pub created_at_ms: i64,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxOutcome {
    /// The receiver accepted it.
    Sent {
        /// When, ms since the epoch.
        at_ms: i64,
    },
    /// It failed and is tried again at `next_attempt_ms`.
    Retry {
        /// When to try again, ms since the epoch.
        next_attempt_ms: i64,
        /// Why it failed.
        error: String,
    },
    /// It failed for the last time.
    GiveUp {
        /// Why it failed.
        error: String,
    },
}

/// What one evaluation of a rule changes, written in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertEvaluation {
    /// The rule evaluated.
    pub rule_id: i64,
    /// The rule's status after it (its last error, as JSON; empty for none).
    pub status: String,
    /// Groups whose state is written (replacing what was there).
    pub states: Vec<AlertGroupState>,
    /// Groups whose state is deleted (gone quiet for long enough).
    pub forgotten_groups: Vec<String>,
    /// Transitions to append to the history.
    pub transitions: Vec<AlertTransitionRecord>,
    /// Notifications to enqueue (those already enqueued are skipped).
    pub outbox: Vec<NewOutboxEntry>,
}

/// Alerts, per project. Deleting the project deletes them; deleting a rule deletes
/// its state, history and pending notifications.
#[async_trait]
pub trait AlertStore: Send + Sync + Debug + 'static {
    /// Creates an object of `kind` in `project`, made by key `by`.
    ///
    /// # Errors
    /// `NotFound` for an unknown project, `TooMany` when the tenant holds
    /// `max_per_tenant` objects of this kind already (checked under the project's
    /// lock).
    async fn create_alert_object(
        &self,
        kind: AlertObjectKind,
        tenant: &str,
        project: &str,
        doc: &str,
        by: &str,
        max_per_tenant: u32,
    ) -> MetadataResult<AlertObject>;
    /// Lists a project's objects of `kind`, oldest first.
    async fn list_alert_objects(
        &self,
        kind: AlertObjectKind,
        tenant: &str,
        project: &str,
    ) -> MetadataResult<Vec<AlertObject>>;
    /// Gets one object of `project`.
    async fn get_alert_object(
        &self,
        kind: AlertObjectKind,
        tenant: &str,
        project: &str,
        id: i64,
    ) -> MetadataResult<AlertObject>;
    /// Replaces what an object holds, as key `by` (its status is kept).
    async fn update_alert_object(
        &self,
        kind: AlertObjectKind,
        tenant: &str,
        project: &str,
        id: i64,
        doc: &str,
        by: &str,
    ) -> MetadataResult<AlertObject>;
    /// Deletes one object.
    async fn delete_alert_object(
        &self,
        kind: AlertObjectKind,
        tenant: &str,
        project: &str,
        id: i64,
    ) -> MetadataResult<()>;
    /// Every object of `kind` of every tenant, for the evaluator.
    async fn all_alert_objects(&self, kind: AlertObjectKind) -> MetadataResult<Vec<AlertObject>>;
    /// Writes an object's status (a missing object is not an error: it was deleted).
    async fn set_alert_status(
        &self,
        kind: AlertObjectKind,
        id: i64,
        status: &str,
    ) -> MetadataResult<()>;
    /// The state of every group of a rule.
    async fn alert_states(&self, rule_id: i64) -> MetadataResult<Vec<AlertGroupState>>;
    /// Writes what one evaluation changed, in one transaction; returns how many
    /// notifications were newly enqueued. A rule deleted meanwhile changes nothing.
    async fn record_alert_evaluation(&self, evaluation: &AlertEvaluation) -> MetadataResult<usize>;
    /// A rule's transitions, newest first, at most `limit`.
    async fn alert_history(
        &self,
        rule_id: i64,
        limit: u32,
    ) -> MetadataResult<Vec<AlertTransitionRecord>>;
    /// Pending notifications whose next attempt is due at `now_ms`, oldest first.
    async fn due_outbox(&self, now_ms: i64, limit: u32) -> MetadataResult<Vec<OutboxEntry>>;
    /// Records how an attempt to send an outbox entry ended.
    async fn finish_outbox_attempt(&self, id: i64, outcome: &OutboxOutcome) -> MetadataResult<()>;
    /// Deletes finished (sent or given up) outbox entries made before
    /// `outbox_before_ms` and transitions older than `history_before_ms`; returns
    /// how many rows went. Pending entries are never deleted.
    async fn prune_alert_records(
        &self,
        outbox_before_ms: i64,
        history_before_ms: i64,
    ) -> MetadataResult<u64>;
}
