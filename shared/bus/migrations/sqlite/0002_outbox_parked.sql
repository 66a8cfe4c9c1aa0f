-- Outbox rows the broker can never accept (larger than its max payload):
-- moved here, with the reason, so the relay goes on with the rows after
-- them and nothing is lost.
CREATE TABLE kesu_outbox_parked (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT  NOT NULL,
    subject     TEXT  NOT NULL,
    msg_type    TEXT  NOT NULL,
    payload     BLOB NOT NULL,
    traceparent TEXT,
    created_at  INTEGER  NOT NULL,
    parked_at   INTEGER  NOT NULL,
    reason      TEXT  NOT NULL
);
