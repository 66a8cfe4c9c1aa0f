-- One row per SLA clock of a ticket (response, resolution, ...): queryable
-- columns plus the whole clock (kesu.v1.SlaClock). warn_at and deadline are
-- what the durable timers fire on.
CREATE TABLE sla_clocks (
    clock_id   TEXT  PRIMARY KEY,
    ticket_id  TEXT  NOT NULL,
    kind       TEXT  NOT NULL,
    state      TEXT  NOT NULL,
    priority   TEXT  NOT NULL,
    department TEXT  NOT NULL,
    started_at BIGINT  NOT NULL,
    warn_at    BIGINT  NOT NULL,
    deadline   BIGINT  NOT NULL,
    record     BYTEA NOT NULL,
    UNIQUE (ticket_id, kind)
);
CREATE INDEX sla_clocks_deadline ON sla_clocks (state, deadline, clock_id);
CREATE INDEX sla_clocks_warn ON sla_clocks (state, warn_at);
