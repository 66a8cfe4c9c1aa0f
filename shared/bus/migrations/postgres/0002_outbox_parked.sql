-- Outbox rows the broker can never accept (larger than its max payload):
-- moved here, with the reason, so the relay goes on with the rows after
-- them and nothing is lost.
CREATE TABLE kesu_outbox_parked (
    id          BIGINT PRIMARY KEY,
    event_id    TEXT  NOT NULL,
    subject     TEXT  NOT NULL,
    msg_type    TEXT  NOT NULL,
    payload     BYTEA NOT NULL,
    traceparent TEXT,
    created_at  BIGINT  NOT NULL,
    parked_at   BIGINT  NOT NULL,
    reason      TEXT  NOT NULL
);
