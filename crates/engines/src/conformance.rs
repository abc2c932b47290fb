//! What the conformance suites of every engine role share: the time a scenario may
//! take, and how its outcome is turned into the test's result.

use std::time::Duration;

use tokio::task::JoinError;
use tokio::time::error::Elapsed;

/// What a scenario returns: `?` on engine calls, a message when it fails.
pub(crate) type ScenarioResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Longest time one scenario (or opening its engine) may take.
pub(crate) const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

/// Fails the test named `name` unless the scenario, run on its own task within
/// [`SCENARIO_TIMEOUT`], succeeded; passes a scenario's panic on unchanged.
pub(crate) fn report(name: &str, outcome: Result<Result<ScenarioResult, Elapsed>, JoinError>) {
    match outcome {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => panic!("{name}: {error}"),
        Ok(Err(_)) => panic!("{name}: the scenario finishes within {SCENARIO_TIMEOUT:?}"),
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}
