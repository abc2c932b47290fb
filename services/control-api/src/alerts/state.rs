//! The state machine of one rule's group, and the documents the store keeps for it.
//!
//! ```text
//!            breach (n < pending)          breach (n = pending): notify firing
//!   ok ───────────────────────▶ pending ───────────────────────▶ firing
//!   ▲  ◀─────────────────────── │                                 │ │ breach, renotify
//!   │      no breach                                              │ │ interval passed:
//!   │                                                             │ ◀ notify again
//!   resolved ◀───────────────────────────── no breach: notify resolved
//!   (a breach from resolved starts over as from ok)
//! ```
//!
//! [`step`] is pure: the evaluator feeds it the persisted state and the new
//! evaluation, and persists what it returns, so a new leader continues from exactly
//! where the old one stopped.

use serde::{Deserialize, Serialize};

/// The state of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Not breaching.
    Ok,
    /// Breaching, fewer than `pending_evaluations` times in a row.
    Pending,
    /// Breaching for `pending_evaluations` evaluations or more.
    Firing,
    /// Stopped breaching after it fired.
    Resolved,
}

impl AlertState {
    /// The state's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Ok => "ok",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// What the store keeps per rule and group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    /// The state.
    pub state: AlertState,
    /// The last evaluation's value.
    pub value: Option<f64>,
    /// When it entered the state, ms since the epoch.
    pub since_ms: i64,
    /// The last evaluation, ms since the epoch.
    pub last_eval_ms: i64,
    /// Consecutive breaches.
    pub breaches: u32,
    /// When the current (or last) firing started: part of its notifications'
    /// dedupe keys.
    pub firing_since_ms: i64,
    /// When the last firing notification was made.
    pub last_notified_ms: i64,
    /// Firing notifications made in the current firing (1, then one more per
    /// re-notification).
    pub notifications: u32,
}

impl GroupState {
    fn fresh(now_ms: i64) -> GroupState {
        GroupState {
            state: AlertState::Ok,
            value: None,
            since_ms: now_ms,
            last_eval_ms: now_ms,
            breaches: 0,
            firing_since_ms: 0,
            last_notified_ms: 0,
            notifications: 0,
        }
    }
}

/// A notification a step asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The group fires (`repeat`: again, after the re-notify interval).
    Firing {
        /// Whether it repeats an earlier notification of this firing.
        repeat: bool,
    },
    /// The group stopped firing.
    Resolved,
}

impl Notice {
    /// The notification's `status`.
    pub fn status(self) -> &'static str {
        match self {
            Notice::Firing { .. } => "firing",
            Notice::Resolved => "resolved",
        }
    }
}

/// The rule settings a step follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Consecutive breaches before firing (at least 1).
    pub pending_evaluations: u32,
    /// Time between firing notifications (0: never repeat).
    pub renotify_ms: i64,
}

/// What one evaluation of a group results in.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The state to persist.
    pub next: GroupState,
    /// The transition, when the state changed.
    pub transition: Option<(AlertState, AlertState)>,
    /// The notification to make, if any.
    pub notice: Option<Notice>,
}

/// Advances a group by one evaluation.
pub fn step(
    previous: Option<&GroupState>,
    breached: bool,
    value: Option<f64>,
    now_ms: i64,
    policy: Policy,
) -> Step {
    let mut next = previous
        .cloned()
        .unwrap_or_else(|| GroupState::fresh(now_ms));
    let from = next.state;
    next.value = value;
    next.last_eval_ms = now_ms;
    let mut notice = None;
    let fire = |next: &mut GroupState| {
        next.state = AlertState::Firing;
        next.firing_since_ms = now_ms;
        next.last_notified_ms = now_ms;
        next.notifications = 1;
        Some(Notice::Firing { repeat: false })
    };
    match (from, breached) {
        (AlertState::Ok | AlertState::Resolved | AlertState::Pending, true) => {
            next.breaches = if from == AlertState::Pending {
                next.breaches.saturating_add(1)
            } else {
                1
            };
            if next.breaches >= policy.pending_evaluations.max(1) {
                notice = fire(&mut next);
            } else {
                next.state = AlertState::Pending;
            }
        }
        (AlertState::Pending, false) => {
            next.state = AlertState::Ok;
            next.breaches = 0;
        }
        (AlertState::Firing, true) => {
            next.breaches = next.breaches.saturating_add(1);
            if policy.renotify_ms > 0 && now_ms - next.last_notified_ms >= policy.renotify_ms {
                next.last_notified_ms = now_ms;
                next.notifications = next.notifications.saturating_add(1);
                notice = Some(Notice::Firing { repeat: true });
            }
        }
        (AlertState::Firing, false) => {
            next.state = AlertState::Resolved;
            next.breaches = 0;
            notice = Some(Notice::Resolved);
        }
        (AlertState::Ok | AlertState::Resolved, false) => {
            next.breaches = 0;
        }
    }
    let transition = (next.state != from).then_some((from, next.state));
    if transition.is_some() {
        next.since_ms = now_ms;
    }
    Step {
        next,
        transition,
        notice,
    }
}

/// The dedupe key of a notification: one per rule, group, firing and notice, so
/// every process that makes it makes the same key.
pub fn dedupe_key(rule_id: i64, group: &str, state: &GroupState, notice: Notice) -> String {
    match notice {
        Notice::Firing { .. } => format!(
            "al_{rule_id}/{group}/{}/firing-{}",
            state.firing_since_ms, state.notifications
        ),
        Notice::Resolved => format!("al_{rule_id}/{group}/{}/resolved", state.firing_since_ms),
    }
}

/// What the history keeps per transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionDoc {
    /// The state before.
    pub from: AlertState,
    /// The state after.
    pub to: AlertState,
    /// The value that caused it.
    pub value: Option<f64>,
    /// Whether a notification was enqueued.
    pub notified: bool,
    /// Whether a silence muted it.
    pub muted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        pending_evaluations: 2,
        renotify_ms: 1_000,
    };

    fn run(states: &[(bool, i64)]) -> Vec<Step> {
        let mut previous: Option<GroupState> = None;
        let mut steps = Vec::new();
        for (breached, now) in states {
            let step = step(previous.as_ref(), *breached, Some(1.0), *now, POLICY);
            previous = Some(step.next.clone());
            steps.push(step);
        }
        steps
    }

    #[test]
    fn test_fires_after_pending_notifies_once_renotifies_and_resolves() {
        let steps = run(&[
            (true, 0),
            (true, 100),
            (true, 200),
            (true, 1_100),
            (true, 1_200),
            (false, 1_300),
            (false, 1_400),
        ]);
        let states: Vec<AlertState> = steps.iter().map(|s| s.next.state).collect();
        use AlertState::*;
        assert_eq!(
            states,
            [Pending, Firing, Firing, Firing, Firing, Resolved, Resolved]
        );
        let notices: Vec<Option<Notice>> = steps.iter().map(|s| s.notice).collect();
        assert_eq!(
            notices,
            [
                None,
                Some(Notice::Firing { repeat: false }),
                None,
                Some(Notice::Firing { repeat: true }),
                None,
                Some(Notice::Resolved),
                None
            ]
        );
        assert_eq!(steps[1].transition, Some((Pending, Firing)));
        assert_eq!(steps[5].transition, Some((Firing, Resolved)));
        assert_eq!(steps[2].transition, None);
        let first = dedupe_key(1, "web-1", &steps[1].next, Notice::Firing { repeat: false });
        let again = dedupe_key(1, "web-1", &steps[3].next, Notice::Firing { repeat: true });
        assert_ne!(
            first, again,
            "a re-notification is a notification of its own"
        );
        assert_eq!(
            first,
            dedupe_key(1, "web-1", &steps[2].next, Notice::Firing { repeat: false })
        );
    }

    #[test]
    fn test_a_pending_group_that_recovers_never_fires() {
        let steps = run(&[(true, 0), (false, 100), (true, 200), (false, 300)]);
        assert!(steps.iter().all(|s| s.notice.is_none()));
        assert_eq!(
            steps[1].transition,
            Some((AlertState::Pending, AlertState::Ok))
        );
    }

    #[test]
    fn test_one_evaluation_fires_at_once_and_a_new_firing_gets_new_keys() {
        let policy = Policy {
            pending_evaluations: 1,
            renotify_ms: 0,
        };
        let first = step(None, true, Some(5.0), 10, policy);
        assert_eq!(first.notice, Some(Notice::Firing { repeat: false }));
        let held = step(Some(&first.next), true, Some(5.0), 10_000, policy);
        assert_eq!(held.notice, None, "renotify 0 never repeats");
        let resolved = step(Some(&held.next), false, Some(0.0), 10_010, policy);
        let again = step(Some(&resolved.next), true, Some(5.0), 10_020, policy);
        assert_eq!(
            again.transition,
            Some((AlertState::Resolved, AlertState::Firing))
        );
        assert_ne!(
            dedupe_key(1, "", &first.next, Notice::Firing { repeat: false }),
            dedupe_key(1, "", &again.next, Notice::Firing { repeat: false })
        );
    }
}
