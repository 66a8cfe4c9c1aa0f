-- Tickets: queryable columns plus the whole ticket (kesu.v1.Ticket).
CREATE TABLE tickets (
    ticket_id       TEXT  PRIMARY KEY,
    feedback_id     TEXT  NOT NULL UNIQUE,
    feedback_number TEXT  NOT NULL,
    version         BIGINT  NOT NULL,
    status          TEXT  NOT NULL,
    priority        TEXT  NOT NULL,
    department      TEXT  NOT NULL,
    handler         TEXT  NOT NULL,
    channel         TEXT  NOT NULL,
    customer_key    TEXT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    record          BYTEA NOT NULL
);
CREATE INDEX tickets_feedback_number ON tickets (feedback_number);
CREATE INDEX tickets_status ON tickets (status, created_at);
CREATE INDEX tickets_department ON tickets (department, status, created_at);
CREATE INDEX tickets_handler ON tickets (handler, status, created_at);
CREATE INDEX tickets_created ON tickets (created_at, ticket_id);

-- Every change of a ticket, in version order.
CREATE TABLE ticket_history (
    ticket_id TEXT NOT NULL,
    version   BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    at        BIGINT NOT NULL,
    summary   TEXT NOT NULL,
    PRIMARY KEY (ticket_id, version)
);
