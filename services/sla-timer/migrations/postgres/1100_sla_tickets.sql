-- What sla-timer knows of each ticket (issue 10): the latest snapshot, the
-- timeline of clock-moving changes by ticket version and the points that
-- fired, as JSON (services/sla-timer/src/facts.rs). Clocks are planned from
-- it; sla_clocks keeps the planned clocks for the at-risk and breached lists.
CREATE TABLE sla_tickets (
    ticket_id  TEXT    PRIMARY KEY,
    version    BIGINT  NOT NULL,
    facts      TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL
);
