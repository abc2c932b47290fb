//! The tail's query string: `query` (the filter) and `start` (where reading begins).

use logpool_api::ApiError;
use logpool_core::query::{parse_query, DefaultOperator, Query as LogQuery};
use logpool_core::timeexpr::parse_time_expr;
use logpool_engines::queue::ReadStart;
use serde::Deserialize;

/// The query string of a tail request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailParams {
    /// Filter; empty means every record.
    pub query: Option<String>,
    /// Where to begin: absent or `now` for only new records, else a time (`-5m`,
    /// RFC 3339 or epoch milliseconds) to backfill from.
    pub start: Option<String>,
}

/// A checked tail request.
#[derive(Debug)]
pub struct TailRequest {
    /// The parsed filter.
    pub query: LogQuery,
    /// Where each shard's reader starts.
    pub start: ReadStart,
}

impl TailParams {
    /// Checks the parameters against the clock (`now_ns`) and the backfill limit.
    ///
    /// # Errors
    /// 400 naming `query` (with the position) or `start` (with the limit).
    pub fn check(&self, now_ns: i64, max_backfill_secs: u64) -> Result<TailRequest, ApiError> {
        let query = parse_query(self.query.as_deref().unwrap_or(""), DefaultOperator::And)?;
        let start = match self.start.as_deref().map(str::trim) {
            None | Some("") | Some("now") => ReadStart::Latest,
            Some(text) => {
                let start_ns = parse_time_expr(text, now_ns).map_err(|message| {
                    ApiError::bad_request(format!("invalid start: {message}"))
                        .with_detail("field", "start")
                })?;
                let limit_ns = i64::try_from(max_backfill_secs)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000_000);
                if now_ns.saturating_sub(start_ns) > limit_ns {
                    return Err(ApiError::bad_request(format!(
                        "start reaches back further than the tail allows ({max_backfill_secs} s)"
                    ))
                    .with_detail("field", "start")
                    .with_detail("limit", max_backfill_secs));
                }
                ReadStart::PublishTime(start_ns.div_euclid(1_000_000))
            }
        };
        Ok(TailRequest { query, start })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_NS: i64 = 1_800_000_000_000_000_000;

    fn params(query: Option<&str>, start: Option<&str>) -> TailParams {
        TailParams {
            query: query.map(str::to_string),
            start: start.map(str::to_string),
        }
    }

    #[test]
    fn test_start_defaults_to_latest() {
        for start in [None, Some(""), Some("now")] {
            let request = params(None, start).check(NOW_NS, 60).expect("valid");
            assert_eq!(request.start, ReadStart::Latest);
        }
    }

    #[test]
    fn test_start_accepts_relative_rfc3339_and_epoch_ms() {
        let now_ms = NOW_NS / 1_000_000;
        let request = params(None, Some("-5m"))
            .check(NOW_NS, 3600)
            .expect("valid");
        assert_eq!(request.start, ReadStart::PublishTime(now_ms - 300_000));
        let request = params(None, Some(&(now_ms - 1000).to_string()))
            .check(NOW_NS, 3600)
            .expect("valid");
        assert_eq!(request.start, ReadStart::PublishTime(now_ms - 1000));
        let request = params(None, Some("2027-01-15T07:40:00Z"))
            .check(NOW_NS, 3600)
            .expect("valid");
        assert_eq!(
            request.start,
            ReadStart::PublishTime(1_800_000_000_000 - 1_200_000)
        );
    }

    #[test]
    fn test_bad_start_and_bad_query_name_their_field() {
        let error = params(None, Some("yesterday-ish"))
            .check(NOW_NS, 3600)
            .expect_err("bad start");
        assert!(format!("{error:?}").contains("start"), "{error:?}");
        let error = params(None, Some("-2h"))
            .check(NOW_NS, 3600)
            .expect_err("too far back");
        assert!(format!("{error:?}").contains("3600"), "{error:?}");
        let error = params(Some("status:(500 OR"), None)
            .check(NOW_NS, 3600)
            .expect_err("bad query");
        assert!(format!("{error:?}").contains("query"), "{error:?}");
    }
}
