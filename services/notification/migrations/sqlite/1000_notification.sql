-- Every notification decided, with its status. The record (kesu.v1.Delivery)
-- holds the masked address only; the clear address travels in the request.
-- dedup_key makes each notification (ticket, purpose, recipient) happen once.
CREATE TABLE deliveries (
    request_id   TEXT  PRIMARY KEY,
    dedup_key    TEXT  NOT NULL UNIQUE,
    ticket_id    TEXT  NOT NULL,
    channel      TEXT  NOT NULL,
    purpose      TEXT  NOT NULL,
    status       TEXT  NOT NULL,
    requested_at INTEGER  NOT NULL,
    updated_at   INTEGER  NOT NULL,
    record       BLOB NOT NULL
);
CREATE INDEX deliveries_ticket ON deliveries (ticket_id, requested_at);
CREATE INDEX deliveries_status ON deliveries (status, updated_at);
