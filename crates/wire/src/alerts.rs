//! Alerts of a project: channels (`/v1/projects/{project}/alert-channels`), rules
//! (`/v1/projects/{project}/alerts`), silences (`/v1/projects/{project}/alert-silences`)
//! and the notification a webhook receives.
//!
//! Bodies accept the answers' read-only members (`id`, `state`, `created_at`, ...)
//! and ignore them, so a client may send back what it read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a write-only secret reads back as once it is set.
pub const REDACTED: &str = "***";

/// Where and how a channel delivers. Which members apply depends on the kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChannelConfig {
    /// The receiver's URL (webhook, slack, dingtalk, feishu).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Signing secret, write-only (reads back as `***`): the webhook's
    /// `X-Logpool-Signature: sha256=<hex HMAC-SHA256 of the body>`, DingTalk's and
    /// Feishu's documented signatures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Extra request headers (webhook only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// SMTP server host (email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    /// SMTP server port (email; default 587 with `starttls`, 465 with `tls`, else 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u16>,
    /// `none`, `starttls` (the default) or `tls` (implicit TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_tls: Option<String>,
    /// SMTP user name; with a password, the client authenticates (PLAIN or LOGIN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// SMTP password, write-only (reads back as `***`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Sender address (email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Recipient addresses (email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<String>>,
}

/// `POST /v1/projects/{project}/alert-channels` and `PUT .../alert-channels/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChannelBody {
    /// Name (1 to 100 characters).
    pub name: String,
    /// `webhook`, `slack`, `dingtalk`, `feishu` or `email`.
    pub kind: String,
    /// Where and how it delivers. On a replace, a secret sent back as `***` keeps
    /// the stored one.
    #[serde(default)]
    pub config: ChannelConfig,
}

/// How the last delivery through a channel ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LastDelivery {
    /// When, RFC 3339.
    pub at: String,
    /// Whether the receiver accepted it.
    pub ok: bool,
    /// Why it failed.
    pub error: Option<String>,
}

/// A notification channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Channel {
    /// Its id (`ch_…`).
    pub id: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Where and how it delivers; secrets read `***`.
    pub config: ChannelConfig,
    /// The last delivery (notification or test), `null` before any.
    pub last_delivery: Option<LastDelivery>,
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// When it was last changed, RFC 3339.
    pub updated_at: String,
}

/// `GET /v1/projects/{project}/alert-channels`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChannelList {
    /// The project's channels, oldest first.
    pub channels: Vec<Channel>,
}

/// `POST /v1/projects/{project}/alert-channels/{id}/test`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChannelTestAnswer {
    /// Whether the receiver accepted the test notification.
    pub ok: bool,
    /// The receiver's HTTP status (or SMTP reply code), when it answered.
    pub status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
}

/// A rule's condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Condition {
    /// `>`, `>=`, `<`, `<=`, `==` (value against threshold), `change_pct` (change
    /// against the previous window in percent: a positive threshold fires on a rise
    /// of at least that much, a negative one on a fall) or `no_data` (no matching
    /// record in the window).
    pub op: String,
    /// The threshold (not used by `no_data`).
    #[serde(default)]
    pub threshold: Option<f64>,
}

/// `POST /v1/projects/{project}/alerts` and `PUT .../alerts/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleBody {
    /// Name (1 to 100 characters).
    pub name: String,
    /// The pool it watches.
    pub pool: String,
    /// The search (query string); `*` or empty matches every record.
    #[serde(default)]
    pub query: String,
    /// Pipe SQL run over the search's records (`SELECT count(*) AS c` or
    /// `SELECT host, count(*) AS c GROUP BY host`): its last numeric column is the
    /// value. Without it the value is the search's count.
    #[serde(default)]
    pub sql: Option<String>,
    /// The window each evaluation looks back over, seconds.
    pub window_secs: u64,
    /// How often it is evaluated, seconds (at least 10).
    pub every_secs: u64,
    /// When it breaches.
    pub condition: Condition,
    /// One alert per value of this field (search count), or the SQL's group column.
    #[serde(default)]
    pub group_by: Option<String>,
    /// `critical`, `warning` (the default) or `info`.
    #[serde(default = "default_severity")]
    pub severity: String,
    /// Labels, matched by silences and sent with notifications.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Template of the notification's text: `{{value}}`, `{{count}}`, `{{group}}`,
    /// `{{rule}}`, `{{window}}`, `{{threshold}}`.
    #[serde(default)]
    pub description: String,
    /// Consecutive breaches before it fires (1 fires at once).
    #[serde(default = "default_pending")]
    pub pending_evaluations: u32,
    /// Seconds between repeated notifications while it fires (0: never repeat).
    #[serde(default = "default_renotify")]
    pub renotify_secs: u64,
    /// Matching lines (newest) a notification carries (0 to 100).
    #[serde(default = "default_max_lines")]
    pub max_lines: u32,
    /// Channel ids (`ch_…`) to notify.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Whether it is evaluated.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// The saved search it was made from, if any.
    #[serde(default)]
    pub saved_search_id: Option<String>,
}

fn default_severity() -> String {
    "warning".to_string()
}

fn default_pending() -> u32 {
    1
}

fn default_renotify() -> u64 {
    3600
}

fn default_max_lines() -> u32 {
    10
}

fn default_enabled() -> bool {
    true
}

/// The state of one group of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleGroupState {
    /// The group's value (empty for a rule without groups).
    pub group: String,
    /// `ok`, `pending`, `firing` or `resolved`.
    pub state: String,
    /// The value of the last evaluation (`null` for no data).
    pub value: Option<f64>,
    /// Since when it is in this state, RFC 3339.
    pub since: String,
    /// The last evaluation, RFC 3339.
    pub last_eval: String,
}

/// An alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    /// Its id (`al_…`).
    pub id: String,
    /// Name.
    pub name: String,
    /// The pool it watches.
    pub pool: String,
    /// The search.
    pub query: String,
    /// The pipe SQL, if any.
    pub sql: Option<String>,
    /// Window, seconds.
    pub window_secs: u64,
    /// Schedule, seconds.
    pub every_secs: u64,
    /// Condition.
    pub condition: Condition,
    /// Group field or column.
    pub group_by: Option<String>,
    /// Severity.
    pub severity: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Description template.
    pub description: String,
    /// Consecutive breaches before it fires.
    pub pending_evaluations: u32,
    /// Seconds between repeated notifications.
    pub renotify_secs: u64,
    /// Matching lines per notification.
    pub max_lines: u32,
    /// Channel ids.
    pub channels: Vec<String>,
    /// Whether it is evaluated.
    pub enabled: bool,
    /// The saved search it was made from.
    pub saved_search_id: Option<String>,
    /// Per group: its state.
    pub state: Vec<RuleGroupState>,
    /// The last evaluation's error, `null` when it succeeded.
    pub last_error: Option<String>,
    /// Id of the key that created it.
    pub created_by: String,
    /// Id of the key that changed it last.
    pub updated_by: String,
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// When it was last changed, RFC 3339.
    pub updated_at: String,
}

/// `GET /v1/projects/{project}/alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleList {
    /// The project's rules, oldest first.
    pub alerts: Vec<Rule>,
}

/// One state transition of a rule's group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Transition {
    /// When, RFC 3339.
    pub at: String,
    /// The group (empty for a rule without groups).
    pub group: String,
    /// The state before.
    pub from: String,
    /// The state after.
    pub to: String,
    /// The value that caused it.
    pub value: Option<f64>,
    /// Whether a notification was enqueued for it.
    pub notified: bool,
    /// Whether a silence muted its notification.
    pub muted: bool,
}

/// `GET /v1/projects/{project}/alerts/{id}/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct History {
    /// Transitions, newest first.
    pub transitions: Vec<Transition>,
}

/// `POST /v1/projects/{project}/alert-silences`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SilenceBody {
    /// The rule it mutes (`al_…`); `null` to mute by labels.
    #[serde(default)]
    pub rule_id: Option<String>,
    /// Mutes rules carrying all of these labels (with `rule_id`: that rule, if it
    /// carries them).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Start, RFC 3339 (default now).
    #[serde(default)]
    pub starts_at: Option<String>,
    /// End, RFC 3339.
    pub ends_at: String,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// A silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Silence {
    /// Its id (`si_…`).
    pub id: String,
    /// The rule it mutes, if one.
    pub rule_id: Option<String>,
    /// The labels it matches.
    pub labels: BTreeMap<String, String>,
    /// Start, RFC 3339.
    pub starts_at: String,
    /// End, RFC 3339.
    pub ends_at: String,
    /// Why.
    pub comment: String,
    /// Id of the key that created it.
    pub created_by: String,
    /// When it was created, RFC 3339.
    pub created_at: String,
}

/// `GET /v1/projects/{project}/alert-silences`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SilenceList {
    /// The project's silences, oldest first.
    pub silences: Vec<Silence>,
}

/// The rule a notification is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationRule {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its severity.
    pub severity: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// The window a notification's value was computed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationWindow {
    /// Start, RFC 3339.
    pub from: String,
    /// End, RFC 3339.
    pub to: String,
}

/// One matching log line of a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NotificationLine {
    /// Event time, RFC 3339.
    pub time: String,
    /// Record id.
    pub id: String,
    /// The record's message (or its fields as JSON when it has none).
    pub line: String,
    /// The record's fields.
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// What a webhook channel receives (a POST with this JSON body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    /// The rule.
    pub rule: NotificationRule,
    /// `firing` or `resolved`.
    pub status: String,
    /// The group (empty for a rule without groups).
    pub group: String,
    /// The value that caused it.
    pub value: Option<f64>,
    /// The rule's threshold.
    pub threshold: Option<f64>,
    /// The window.
    pub window: NotificationWindow,
    /// The rule's description template, filled in.
    pub description: String,
    /// The console search of the window.
    pub console_url: String,
    /// Up to the rule's `max_lines` matching lines, newest first.
    pub lines: Vec<NotificationLine>,
    /// Unique per rule, group, firing and notification: a receiver that sees a key
    /// twice (a retry after a lost answer) can drop the second.
    pub dedupe_key: String,
    /// The project.
    pub project: String,
    /// Whether this repeats an earlier firing notification (re-notify interval).
    pub repeat: bool,
    /// When it was made, RFC 3339.
    pub at: String,
}
