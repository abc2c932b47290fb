//! Index pre-creation: tomorrow's daily index of every pool is created before
//! midnight, so the first records of a day do not wait for (and the index server
//! is not flooded with) the creation of every pool's index at 00:00 UTC.
//!
//! Each pool has its own fixed moment inside a window at the end of the UTC day,
//! derived from its pool id ([`lead_secs`]), so the creations are spread over the
//! window and every loghub computes the same schedule. It is a singleton job: only the
//! loghub holding the `index-precreation` leadership runs it. Creating an index that
//! exists is a no-op, so a new leader that creates again what the previous one did
//! is harmless.

use logpool_core::pool_id::PoolId;
use std::collections::HashSet;
use std::sync::Arc;

use logpool_api::jobs::Job;
use logpool_api::{time::now_ns, RoutingView};
use logpool_engines::index::LogIndex;
use time::{Date, OffsetDateTime};

/// The window ends this long before midnight, so that even the last pool's index
/// exists well before its first record.
pub const END_MARGIN_SECS: u64 = 300;

const SECS_PER_DAY: i64 = 86_400;
const NANOS_PER_SEC: i64 = 1_000_000_000;

/// How many seconds before the next UTC midnight the pool's next-day index is due:
/// a value in `(END_MARGIN_SECS, window_secs]`, the same for a pool on every day and
/// in every process, and spread evenly over the window across pool ids.
pub fn lead_secs(pool_id: PoolId, window_secs: u64) -> u64 {
    let span = window_secs.saturating_sub(END_MARGIN_SECS).max(1);
    END_MARGIN_SECS + 1 + spread(pool_id.get() as u64) % span
}

/// When (nanoseconds since the epoch) the pool's index for `day` is due.
pub fn due_at_ns(pool_id: PoolId, day: Date, window_secs: u64) -> i64 {
    let midnight_ns =
        i64::from(day.to_julian_day() - EPOCH_JULIAN_DAY) * SECS_PER_DAY * NANOS_PER_SEC;
    let lead_ns =
        i64::try_from(lead_secs(pool_id, window_secs)).unwrap_or(i64::MAX) * NANOS_PER_SEC;
    midnight_ns.saturating_sub(lead_ns)
}

/// Julian day number of 1970-01-01.
const EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// SplitMix64's finaliser: consecutive pool ids land far apart in the window, and,
/// unlike `std`'s hasher, the result never changes between builds.
fn spread(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The UTC date of a time in nanoseconds.
fn date_of(time_ns: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(time_ns.div_euclid(NANOS_PER_SEC))
        .map_or(Date::MIN, OffsetDateTime::date)
}

/// The pre-creation job: each round creates the indices that are due.
#[derive(Debug)]
pub struct Precreation {
    /// The index to create days in.
    pub index: Arc<dyn LogIndex>,
    /// Pool routes.
    pub routing: RoutingView,
    /// Length of the window before midnight, in seconds.
    pub window_secs: u64,
    /// What this process created so far (pool id, day), so it is not asked again.
    pub prepared: HashSet<(PoolId, Date)>,
}

impl Precreation {
    /// A job that has created nothing yet.
    pub fn new(index: Arc<dyn LogIndex>, routing: RoutingView, window_secs: u64) -> Precreation {
        Precreation {
            index,
            routing,
            window_secs,
            prepared: HashSet::new(),
        }
    }
}

impl Job for Precreation {
    async fn run_once(&mut self) {
        let now = now_ns();
        prepare_due(
            self.index.as_ref(),
            &self.routing,
            self.window_secs,
            now,
            &mut self.prepared,
        )
        .await;
    }
}

/// Creates tomorrow's index of every pool that is due at `now_ns` and not yet in
/// `prepared` (pool id, day); failed ones are tried again on the next call. Returns
/// how many were created.
pub async fn prepare_due(
    index: &dyn LogIndex,
    routing: &RoutingView,
    window_secs: u64,
    now_ns: i64,
    prepared: &mut HashSet<(PoolId, Date)>,
) -> usize {
    let today = date_of(now_ns);
    let Some(tomorrow) = today.next_day() else {
        return 0;
    };
    prepared.retain(|(_, day)| *day > today);
    let mut created = 0;
    for pool in &routing.snapshot().pools {
        let key = (pool.pool_id, tomorrow);
        if prepared.contains(&key) || now_ns < due_at_ns(pool.pool_id, tomorrow, window_secs) {
            continue;
        }
        match index.prepare_day(pool, tomorrow).await {
            Ok(()) => {
                tracing::info!(pool_id = %pool.pool_id, day = %tomorrow, "created the next day's index ahead of time");
                prepared.insert(key);
                created += 1;
            }
            Err(error) => {
                tracing::warn!(%error, pool_id = %pool.pool_id, day = %tomorrow, "index pre-creation failed; will retry")
            }
        }
    }
    created
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: u64 = 4 * 3600;

    fn day() -> Date {
        Date::from_calendar_date(2026, time::Month::November, 22).expect("date")
    }

    #[test]
    fn test_due_times_are_inside_the_window_before_midnight() {
        let midnight_ns =
            OffsetDateTime::new_utc(day(), time::Time::MIDNIGHT).unix_timestamp() * NANOS_PER_SEC;
        for pool_id in (-5..2_000).map(PoolId::new) {
            let due = due_at_ns(pool_id, day(), WINDOW);
            let lead_ns = midnight_ns - due;
            assert!(
                lead_ns > END_MARGIN_SECS as i64 * NANOS_PER_SEC,
                "pool {pool_id}"
            );
            assert!(lead_ns <= WINDOW as i64 * NANOS_PER_SEC, "pool {pool_id}");
            assert_eq!(date_of(due).next_day(), Some(day()), "due the day before");
        }
    }

    #[test]
    fn test_schedule_is_deterministic_and_per_pool() {
        for pool_id in [1, 2, 77, 1_000_000_007].map(PoolId::new) {
            assert_eq!(lead_secs(pool_id, WINDOW), lead_secs(pool_id, WINDOW));
            // The same offset on every day.
            let next = day().next_day().expect("next");
            assert_eq!(
                due_at_ns(pool_id, next, WINDOW) - due_at_ns(pool_id, day(), WINDOW),
                SECS_PER_DAY * NANOS_PER_SEC
            );
        }
        assert_eq!(
            lead_secs(PoolId::new(42), WINDOW),
            614,
            "stable across builds and processes"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_due_pools_are_prepared_once_per_day() {
        use logpool_core::routing::{PoolRoute, RoutingSnapshot};
        use logpool_engines::coordination::{Coordinator, LocalCoordinator};
        use logpool_engines::index::{TantivyIndex, TantivyIndexConfig};

        let dir = tempfile::tempdir().expect("tempdir");
        let index = TantivyIndex::open(TantivyIndexConfig {
            dir: dir.path().to_path_buf(),
            ..TantivyIndexConfig::default()
        })
        .expect("index");
        let coordinator = LocalCoordinator::new();
        let pools: Vec<PoolRoute> = (1..=50)
            .map(|pool_id| PoolRoute {
                pool_id: PoolId::new(pool_id),
                tenant: "t".into(),
                project: "p".into(),
                name: format!("pool{pool_id}"),
                partitions: vec![0],
                retention_days: 7,
                field_hints: Default::default(),
                event_window: Default::default(),
                learned_types: Default::default(),
            })
            .collect();
        coordinator
            .publish(RoutingSnapshot {
                version: 0,
                pools: pools.clone(),
                ..RoutingSnapshot::default()
            })
            .await
            .expect("publish");
        let routing = RoutingView::new(coordinator.watch());
        let tomorrow = day().next_day().expect("tomorrow");
        let mut due: Vec<i64> = pools
            .iter()
            .map(|pool| due_at_ns(pool.pool_id, tomorrow, WINDOW))
            .collect();
        due.sort_unstable();
        let mut prepared = HashSet::new();

        // Before the window nothing is due; in it, exactly the pools whose time came.
        let before = due[0] - 1;
        assert_eq!(
            prepare_due(&index, &routing, WINDOW, before, &mut prepared).await,
            0
        );
        let middle = due[24];
        assert_eq!(
            prepare_due(&index, &routing, WINDOW, middle, &mut prepared).await,
            25
        );
        // Already prepared pools are not asked again; the rest catch up.
        assert_eq!(
            prepare_due(&index, &routing, WINDOW, middle, &mut prepared).await,
            0
        );
        let last = due[49];
        assert_eq!(
            prepare_due(&index, &routing, WINDOW, last, &mut prepared).await,
            25
        );
        assert_eq!(prepared.len(), 50);
        // The next day starts a new round and forgets the old one.
        let next_round = last + SECS_PER_DAY * NANOS_PER_SEC;
        assert_eq!(
            prepare_due(&index, &routing, WINDOW, next_round, &mut prepared).await,
            50
        );
        assert!(prepared.iter().all(|(_, d)| *d > tomorrow));
    }

    #[test]
    fn test_offsets_spread_over_the_window() {
        // 1 000 consecutive pool ids over 8 equal slices of the window: each slice
        // gets about 125; a schedule that bunched pools up would leave some empty.
        let usable = WINDOW - END_MARGIN_SECS;
        let mut slices = [0u32; 8];
        for pool_id in (1..=1_000).map(PoolId::new) {
            let offset = lead_secs(pool_id, WINDOW) - END_MARGIN_SECS - 1;
            slices[(offset * 8 / usable) as usize] += 1;
        }
        assert!(
            slices.iter().all(|count| (80..=170).contains(count)),
            "{slices:?}"
        );
        // A tiny window still keeps the margin.
        assert!(lead_secs(PoolId::new(9), 10) > END_MARGIN_SECS);
    }
}
