-- Inbox: ids of messages a consumer has applied, written in the same
-- transaction as the effects, so a redelivered message is skipped.
CREATE TABLE kesu_inbox (
    consumer     TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX kesu_inbox_processed_at ON kesu_inbox (processed_at);

-- Outbox: events written in the same transaction as the state change; the
-- relay publishes them with Nats-Msg-Id = event_id and then deletes them.
CREATE TABLE kesu_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT    NOT NULL UNIQUE,
    subject     TEXT    NOT NULL,
    msg_type    TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    traceparent TEXT,
    created_at  INTEGER NOT NULL
);
