-- A pool's own accepted event-time window; NULL follows the global setting.
-- One DDL statement per file (see 0001): days of age before arrival (at most the
-- pool's retention) and seconds of lead after arrival.
ALTER TABLE pools
    ADD COLUMN max_event_age_days BIGINT NULL,
    ADD COLUMN max_event_future_secs BIGINT NULL;
