//! Alerts: rules over a pool's search or pipe SQL, the channels they notify and the
//! silences that mute them (`/v1/projects/{project}/alerts`, `.../alert-channels`,
//! `.../alert-silences`), and the two leader-gated jobs that evaluate the rules and
//! deliver their notifications.
//!
//! # Where the jobs run, and why
//! In control-api: it holds the index (it creates and drops pool indexes) and the
//! metadata store, so an evaluation reads the rules, runs the same parsed query and
//! pipe-SQL plan as search-api ([`evaluate`]: `parse_query`, `plan_sql`,
//! `LogIndex::aggregate` and `finish_aggregate`) and writes its state without a hop
//! to another service. control-api runs in standalone and as its own deployment in
//! distributed mode, where the coordinator's leadership of the `alerts` job
//! (`Jobs::leader_every`) makes one replica evaluate and deliver at a time.
//!
//! # Modules
//! - [`ids`]: the `al_` / `ch_` / `si_` ids of the API.
//! - [`rules`], [`channels`], [`silences`]: the routes, validation and stored
//!   documents.
//! - [`state`]: the state machine of one rule's group (ok → pending → firing →
//!   resolved), pure and unit-tested.
//! - [`evaluate`]: one rule's values per group, and the matching lines.
//! - [`evaluator`]: the `alerts` job: schedules, timeouts, concurrency, and the one
//!   transaction that writes states, history and outbox; it starts the deliveries.
//! - [`notify`]: the channel kinds and the delivery rounds that empty the outbox.

pub mod channels;
pub mod evaluate;
pub mod evaluator;
pub mod ids;
pub mod notify;
pub mod rules;
pub mod silences;
pub mod state;

use logpool_api::Routes;

use crate::ControlState;

/// Every alert route with its permission.
pub(crate) fn routes() -> Routes<ControlState> {
    Routes::new()
        .merge(rules::routes())
        .merge(channels::routes())
        .merge(silences::routes())
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    logpool_api::time::now_ns() / 1_000_000
}

/// A 400 naming `field`.
pub(crate) fn invalid(field: &str, message: impl Into<String>) -> logpool_api::ApiError {
    logpool_api::ApiError::bad_request(message).with_detail("field", field)
}

/// Checks a name: not empty, at most 100 characters, no control characters.
pub(crate) fn check_display_name(name: &str) -> Result<String, logpool_api::ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid("name", "`name` must not be empty"));
    }
    if name.chars().count() > 100 {
        return Err(
            invalid("name", "`name` is longer than 100 characters").with_detail("limit", 100)
        );
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name", "`name` must not hold control characters"));
    }
    Ok(name.to_string())
}
