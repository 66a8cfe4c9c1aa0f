-- Durable timers (kesu-timers): one row per pending timer, unique per
-- (kind, key) so scheduling again replaces; the firing loop reads the near
-- window by due instant and deletes fired rows in the transaction that
-- applies them. Replicas claim due rows with FOR UPDATE SKIP LOCKED.
CREATE TABLE kesu_timers (
    id           BIGSERIAL PRIMARY KEY,
    kind         TEXT   NOT NULL,
    timer_key    TEXT   NOT NULL,
    due          BIGINT NOT NULL,
    payload      BYTEA  NOT NULL,
    scheduled_at BIGINT NOT NULL,
    UNIQUE (kind, timer_key)
);
CREATE INDEX kesu_timers_due ON kesu_timers (due, id);

-- Timers whose handler failed permanently: kept with the reason, never
-- dropped silently.
CREATE TABLE kesu_timers_parked (
    id        BIGINT PRIMARY KEY,
    kind      TEXT   NOT NULL,
    timer_key TEXT   NOT NULL,
    due       BIGINT NOT NULL,
    payload   BYTEA  NOT NULL,
    parked_at BIGINT NOT NULL,
    reason    TEXT   NOT NULL
);
