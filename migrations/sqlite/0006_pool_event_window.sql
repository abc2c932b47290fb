-- A pool's own accepted event-time window; NULL follows the global setting.
-- Days of age before arrival (at most the pool's retention).
ALTER TABLE pools ADD COLUMN max_event_age_days INTEGER NULL;
-- Seconds of lead after arrival.
ALTER TABLE pools ADD COLUMN max_event_future_secs INTEGER NULL;
