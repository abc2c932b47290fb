//! The `alerts` job: runs every enabled rule on its schedule, and delivers the
//! notifications ([`super::notify::outbox`]), in the one control-api process that
//! leads the job. Both halves in one job keep them in one process, so a failover
//! moves both at once and the lease bounds the gap of each.
//!
//! - Every second the leader looks for due rules (a rule is due `every_secs` after
//!   its last evaluation, read from the store after a failover, so the new leader
//!   continues the old one's schedule).
//! - Each due rule runs in a task of its own, at most `alerts.evaluation_concurrency`
//!   at once and each within `alerts.rule_timeout_secs`: a slow or failing rule only
//!   delays itself. A rule still running when it is due again skips that round.
//! - One evaluation reads the persisted state of the rule's groups, advances each
//!   ([`super::state::step`]), and writes the new states, the transitions and the
//!   notifications they cause in one transaction
//!   ([`logpool_engines::metadata::AlertStore::record_alert_evaluation`]). The outbox
//!   keeps one entry per dedupe key, so two processes evaluating the same firing
//!   (a leadership change mid-round) enqueue it once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use logpool_api::jobs::Job;
use logpool_api::RoutingView;
use logpool_engines::metadata::{
    AlertEvaluation, AlertGroupState, AlertObject, AlertObjectKind, AlertTransitionRecord,
    NewOutboxEntry,
};
use logpool_wire::alerts::{
    Condition, Notification, NotificationLine, NotificationRule, NotificationWindow, RuleBody,
};
use tokio::sync::Semaphore;

use super::evaluate::{compile, lines, values, CompiledRule, Measure};
use super::ids::{format_id, parse_id};
use super::now_ms;
use super::rules::{parse_rule, RuleStatus};
use super::silences::SilenceDoc;
use super::state::{dedupe_key, step, AlertState, GroupState, Notice, Policy, TransitionDoc};
use crate::{format_ms, ControlState};

/// How often the leader looks for due rules.
pub const TICK: Duration = Duration::from_secs(1);
/// A quiet group (ok or resolved, absent from the results) is forgotten this long
/// after its last transition.
const FORGET_AFTER_MS: i64 = 86_400_000;
/// Longest line text a notification carries, characters.
const MAX_LINE_CHARS: usize = 2_000;
/// How often finished notifications and old transitions are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);
/// Finished notifications are kept this long (their dedupe keys with them).
const OUTBOX_KEEP_MS: i64 = 7 * 86_400_000;
/// Transitions are kept this long.
const HISTORY_KEEP_MS: i64 = 30 * 86_400_000;

/// The evaluation job.
#[derive(Debug)]
pub struct AlertEvaluator {
    state: ControlState,
    in_flight: Arc<Mutex<HashSet<i64>>>,
    slots: Arc<Semaphore>,
    next_due_ms: HashMap<i64, i64>,
    delivering: Arc<AtomicBool>,
    last_prune: Option<std::time::Instant>,
}

impl AlertEvaluator {
    /// The job over `state`'s store and index.
    pub fn new(state: ControlState) -> AlertEvaluator {
        let slots = Arc::new(Semaphore::new(state.alerts.evaluation_concurrency.max(1)));
        AlertEvaluator {
            state,
            in_flight: Arc::default(),
            slots,
            next_due_ms: HashMap::new(),
            delivering: Arc::default(),
            last_prune: None,
        }
    }
}

impl Job for AlertEvaluator {
    async fn run_once(&mut self) {
        self.start_delivery();
        self.start_due_rules().await;
        self.prune_now_and_then();
    }
}

impl AlertEvaluator {
    /// Starts a delivery round unless one still runs: a slow receiver delays only
    /// the next delivery round, never an evaluation.
    fn start_delivery(&self) {
        if self.delivering.swap(true, Ordering::AcqRel) {
            return;
        }
        let state = self.state.clone();
        let delivering = self.delivering.clone();
        tokio::spawn(async move {
            if let Err(error) = super::notify::outbox::deliver_due(&state).await {
                tracing::warn!(%error, "alert delivery round failed");
            }
            delivering.store(false, Ordering::Release);
        });
    }

    /// Prunes finished notifications and old transitions once an hour.
    fn prune_now_and_then(&mut self) {
        if self
            .last_prune
            .is_some_and(|last| last.elapsed() < PRUNE_EVERY)
        {
            return;
        }
        self.last_prune = Some(std::time::Instant::now());
        let metadata = self.state.metadata.clone();
        tokio::spawn(async move {
            let now = now_ms();
            match metadata
                .prune_alert_records(now - OUTBOX_KEEP_MS, now - HISTORY_KEEP_MS)
                .await
            {
                Ok(pruned) => tracing::debug!(pruned, "pruned alert records"),
                Err(error) => tracing::warn!(%error, "failed to prune alert records"),
            }
        });
    }

    /// Starts a task for every rule that is due and not running.
    async fn start_due_rules(&mut self) {
        let rules = match self
            .state
            .metadata
            .all_alert_objects(AlertObjectKind::Rule)
            .await
        {
            Ok(rules) => rules,
            Err(error) => {
                tracing::warn!(%error, "failed to read the alert rules");
                return;
            }
        };
        let now = now_ms();
        let live: HashSet<i64> = rules.iter().map(|rule| rule.id).collect();
        self.next_due_ms.retain(|id, _| live.contains(id));
        for object in rules {
            let Ok(rule) = parse_rule(&object) else {
                continue;
            };
            if !rule.enabled {
                continue;
            }
            let every_ms = i64::try_from(rule.every_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
            let due =
                *self.next_due_ms.entry(object.id).or_insert_with(|| {
                    match RuleStatus::parse(&object.status).last_eval_ms {
                        0 => now,
                        last => last.saturating_add(every_ms),
                    }
                });
            if now < due {
                continue;
            }
            {
                let mut in_flight = self
                    .in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if !in_flight.insert(object.id) {
                    continue;
                }
            }
            self.next_due_ms
                .insert(object.id, now.saturating_add(every_ms));
            let state = self.state.clone();
            let slots = self.slots.clone();
            let in_flight = self.in_flight.clone();
            tokio::spawn(async move {
                if let Ok(_slot) = slots.acquire_owned().await {
                    run_rule(&state, &object, &rule).await;
                }
                in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&object.id);
            });
        }
    }
}

/// Evaluates one rule within the timeout and records the outcome.
async fn run_rule(state: &ControlState, object: &AlertObject, rule: &RuleBody) {
    let now = now_ms();
    let timeout = Duration::from_secs(state.alerts.rule_timeout_secs.max(1));
    let outcome = match tokio::time::timeout(timeout, evaluate_rule(state, object, rule, now)).await
    {
        Ok(outcome) => outcome,
        Err(_) => Err(format!(
            "the evaluation took longer than {} s",
            timeout.as_secs()
        )),
    };
    let recorded = match outcome {
        Ok(evaluation) => state
            .metadata
            .record_alert_evaluation(&evaluation)
            .await
            .map(drop),
        Err(message) => {
            tracing::debug!(rule = object.id, %message, "alert rule evaluation failed");
            let status = RuleStatus {
                last_error: Some(message),
                last_eval_ms: now,
            };
            let status = serde_json::to_string(&status).unwrap_or_default();
            state
                .metadata
                .set_alert_status(AlertObjectKind::Rule, object.id, &status)
                .await
        }
    };
    if let Err(error) = recorded {
        tracing::warn!(%error, rule = object.id, "failed to record an alert evaluation");
    }
}

/// Whether `value` breaches `condition`, and the value to show (the change in
/// percent for `change_pct`).
pub fn judge(
    condition: &Condition,
    value: Option<f64>,
    previous: Option<f64>,
) -> (bool, Option<f64>) {
    let threshold = condition.threshold.unwrap_or(0.0);
    let compare = |check: fn(f64, f64) -> bool| value.is_some_and(|value| check(value, threshold));
    match condition.op.as_str() {
        ">" => (compare(|v, t| v > t), value),
        ">=" => (compare(|v, t| v >= t), value),
        "<" => (compare(|v, t| v < t), value),
        "<=" => (compare(|v, t| v <= t), value),
        "==" => (compare(|v, t| v == t), value),
        "no_data" => (value.is_none_or(|value| value == 0.0), value),
        "change_pct" => {
            let current = value.unwrap_or(0.0);
            match previous.filter(|previous| *previous != 0.0) {
                Some(previous) => {
                    let change = (current - previous) / previous.abs() * 100.0;
                    let breached = if threshold >= 0.0 {
                        change >= threshold
                    } else {
                        change <= threshold
                    };
                    (breached, Some(change))
                }
                // A rise from nothing is an unbounded rise (shown as no value).
                None => (current > 0.0 && threshold >= 0.0, None),
            }
        }
        _ => (false, value),
    }
}

/// Fills the description template.
fn describe(rule: &RuleBody, group: &str, value: Option<f64>) -> String {
    let value = value.map_or_else(|| "no data".to_string(), |value| value.to_string());
    rule.description
        .replace("{{value}}", &value)
        .replace("{{count}}", &value)
        .replace("{{group}}", group)
        .replace("{{rule}}", &rule.name)
        .replace("{{window}}", &format!("{} s", rule.window_secs))
        .replace(
            "{{threshold}}",
            &rule
                .condition
                .threshold
                .map_or_else(String::new, |threshold| threshold.to_string()),
        )
}

/// Percent-encodes a URL query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The console search of a group's window.
fn console_url(
    base: &str,
    project: &str,
    rule: &RuleBody,
    compiled: &CompiledRule,
    group: &str,
    window: &NotificationWindow,
) -> String {
    let query = match compiled.group_field() {
        Some(field) if !group.is_empty() => {
            let quoted = group.replace('\\', "\\\\").replace('"', "\\\"");
            format!("({}) AND {field}:\"{quoted}\"", rule.query)
        }
        _ => rule.query.clone(),
    };
    format!(
        "{}/#/explore?project={}&pool={}&q={}&from={}&to={}",
        base.trim_end_matches('/'),
        encode(project),
        encode(&rule.pool),
        encode(&query),
        encode(&window.from),
        encode(&window.to),
    )
}

struct Evaluated {
    rule_id: i64,
    now: i64,
    from_ms: i64,
}

async fn evaluate_rule(
    state: &ControlState,
    object: &AlertObject,
    rule: &RuleBody,
    now: i64,
) -> Result<AlertEvaluation, String> {
    let route = RoutingView::new(state.coordinator.watch())
        .pool(&object.tenant, &object.project, &rule.pool)
        .map_err(|error| error.message)?;
    let compiled = compile(rule, &rule.pool).map_err(|error| error.message)?;
    let window_ms = i64::try_from(rule.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let from_ms = now.saturating_sub(window_ms);
    let to_ns = now.saturating_mul(1_000_000);
    let from_ns = from_ms.saturating_mul(1_000_000);
    let index = state.index.as_ref();
    let current = values(index, &route, &compiled, from_ns, to_ns)
        .await
        .map_err(|error| error.to_string())?;
    let previous = if rule.condition.op == "change_pct" {
        let before_ns = from_ns.saturating_sub(window_ms.saturating_mul(1_000_000));
        values(index, &route, &compiled, before_ns, from_ns)
            .await
            .map_err(|error| error.to_string())?
    } else {
        BTreeMap::new()
    };
    let stored: BTreeMap<String, GroupState> = state
        .metadata
        .alert_states(object.id)
        .await
        .map_err(|error| error.to_string())?
        .into_iter()
        .filter_map(|stored| Some((stored.group, serde_json::from_str(&stored.doc).ok()?)))
        .collect();
    let mut groups: BTreeSet<String> = current.keys().chain(stored.keys()).cloned().collect();
    if groups.is_empty() && (rule.group_by.is_none() || rule.condition.op == "no_data") {
        groups.insert(String::new());
    }
    let muted = state
        .metadata
        .list_alert_objects(AlertObjectKind::Silence, &object.tenant, &object.project)
        .await
        .map_err(|error| error.to_string())?
        .iter()
        .filter_map(|silence| serde_json::from_str::<SilenceDoc>(&silence.doc).ok())
        .any(|silence| silence.mutes(object.id, &rule.labels, now));
    let channels: Vec<i64> = rule
        .channels
        .iter()
        .filter_map(|channel| parse_id(AlertObjectKind::Channel, channel))
        .collect();
    let policy = Policy {
        pending_evaluations: rule.pending_evaluations,
        renotify_ms: i64::try_from(rule.renotify_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
    };
    let context = Evaluated {
        rule_id: object.id,
        now,
        from_ms,
    };
    let mut evaluation = AlertEvaluation {
        rule_id: object.id,
        status: serde_json::to_string(&RuleStatus {
            last_error: None,
            last_eval_ms: now,
        })
        .unwrap_or_default(),
        ..AlertEvaluation::default()
    };
    for group in groups {
        let value = match current.get(&group) {
            Some(value) => *value,
            // A group gone from a count has no matching record: a zero. An SQL
            // group gone has no value at all.
            None if matches!(compiled.measure, Measure::Count { .. }) => Some(0.0),
            None => None,
        };
        let (breached, shown) = judge(
            &rule.condition,
            value,
            previous.get(&group).copied().flatten(),
        );
        let stepped = step(stored.get(&group), breached, shown, now, policy);
        let quiet = matches!(stepped.next.state, AlertState::Ok | AlertState::Resolved);
        if !current.contains_key(&group)
            && quiet
            && stepped.transition.is_none()
            && stepped.notice.is_none()
            && now - stepped.next.since_ms > FORGET_AFTER_MS
        {
            evaluation.forgotten_groups.push(group);
            continue;
        }
        let mut notified = false;
        if let Some(notice) = stepped.notice {
            if !muted && !channels.is_empty() {
                let notification = notification(
                    state,
                    object,
                    rule,
                    &compiled,
                    &route,
                    &context,
                    &group,
                    shown,
                    &stepped.next,
                    notice,
                )
                .await;
                let payload =
                    serde_json::to_string(&notification).map_err(|error| error.to_string())?;
                for channel_id in &channels {
                    evaluation.outbox.push(NewOutboxEntry {
                        channel_id: *channel_id,
                        dedupe_key: notification.dedupe_key.clone(),
                        payload: payload.clone(),
                    });
                }
                notified = true;
            }
        }
        if let Some((from, to)) = stepped.transition {
            let doc = TransitionDoc {
                from,
                to,
                value: shown,
                notified,
                muted: muted && stepped.notice.is_some(),
            };
            evaluation.transitions.push(AlertTransitionRecord {
                group: group.clone(),
                doc: serde_json::to_string(&doc).map_err(|error| error.to_string())?,
                at_ms: now,
            });
        }
        evaluation.states.push(AlertGroupState {
            group,
            doc: serde_json::to_string(&stepped.next).map_err(|error| error.to_string())?,
        });
    }
    Ok(evaluation)
}

#[allow(clippy::too_many_arguments)]
async fn notification(
    state: &ControlState,
    object: &AlertObject,
    rule: &RuleBody,
    compiled: &CompiledRule,
    route: &logpool_core::routing::PoolRoute,
    context: &Evaluated,
    group: &str,
    value: Option<f64>,
    group_state: &GroupState,
    notice: Notice,
) -> Notification {
    let window = NotificationWindow {
        from: format_ms(context.from_ms),
        to: format_ms(context.now),
    };
    let max_lines = usize::try_from(rule.max_lines).unwrap_or(0);
    let found = lines(
        state.index.as_ref(),
        route,
        compiled,
        group,
        context.from_ms.saturating_mul(1_000_000),
        context.now.saturating_mul(1_000_000),
        max_lines,
    )
    .await
    .unwrap_or_else(|error| {
        tracing::warn!(%error, rule = context.rule_id, "failed to read an alert's lines");
        Vec::new()
    });
    let found = found
        .into_iter()
        .map(|mut line: NotificationLine| {
            if line.line.chars().count() > MAX_LINE_CHARS {
                line.line = line.line.chars().take(MAX_LINE_CHARS).collect();
            }
            line
        })
        .collect();
    Notification {
        rule: NotificationRule {
            id: format_id(AlertObjectKind::Rule, object.id),
            name: rule.name.clone(),
            severity: rule.severity.clone(),
            labels: rule.labels.clone(),
        },
        status: notice.status().to_string(),
        group: group.to_string(),
        value,
        threshold: rule.condition.threshold,
        console_url: console_url(
            &state.alerts.console_url,
            &object.project,
            rule,
            compiled,
            group,
            &window,
        ),
        window,
        description: describe(rule, group, value),
        lines: found,
        dedupe_key: dedupe_key(context.rule_id, group, group_state, notice),
        project: object.project.clone(),
        repeat: matches!(notice, Notice::Firing { repeat: true }),
        at: format_ms(context.now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(op: &str, threshold: Option<f64>) -> Condition {
        Condition {
            op: op.to_string(),
            threshold,
        }
    }

    #[test]
    fn test_conditions_compare_values_changes_and_missing_data() {
        assert_eq!(
            judge(&condition(">", Some(10.0)), Some(11.0), None),
            (true, Some(11.0))
        );
        assert!(!judge(&condition(">", Some(10.0)), Some(10.0), None).0);
        assert!(judge(&condition(">=", Some(10.0)), Some(10.0), None).0);
        assert!(judge(&condition("<", Some(1.0)), Some(0.0), None).0);
        assert!(
            !judge(&condition("<", Some(1.0)), None, None).0,
            "no value is no breach"
        );
        assert!(judge(&condition("<=", Some(1.0)), Some(1.0), None).0);
        assert!(judge(&condition("==", Some(3.0)), Some(3.0), None).0);
        assert!(judge(&condition("no_data", None), Some(0.0), None).0);
        assert!(judge(&condition("no_data", None), None, None).0);
        assert!(!judge(&condition("no_data", None), Some(2.0), None).0);
        assert_eq!(
            judge(&condition("change_pct", Some(50.0)), Some(30.0), Some(20.0)),
            (true, Some(50.0))
        );
        assert!(!judge(&condition("change_pct", Some(60.0)), Some(30.0), Some(20.0)).0);
        assert!(judge(&condition("change_pct", Some(-50.0)), Some(5.0), Some(20.0)).0);
        assert!(judge(&condition("change_pct", Some(10.0)), Some(5.0), None).0);
    }

    #[test]
    fn test_console_url_selects_the_group_and_window() {
        let rule: RuleBody = serde_json::from_value(serde_json::json!({
            "name": "r", "pool": "web", "query": "status:>=500", "group_by": "host",
            "window_secs": 60, "every_secs": 10, "condition": {"op": ">", "threshold": 1.0},
        }))
        .expect("rule");
        let compiled = compile(&rule, "web").expect("compiles");
        let window = NotificationWindow {
            from: "2026-01-01T00:00:00Z".to_string(),
            to: "2026-01-01T00:01:00Z".to_string(),
        };
        let url = console_url(
            "https://logs.test/",
            "shop",
            &rule,
            &compiled,
            "web-1",
            &window,
        );
        assert_eq!(
            url,
            "https://logs.test/#/explore?project=shop&pool=web&q=%28status%3A%3E%3D500%29%20AND%20host%3A%22web-1%22&from=2026-01-01T00%3A00%3A00Z&to=2026-01-01T00%3A01%3A00Z"
        );
    }
}
