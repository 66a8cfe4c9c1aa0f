-- Co-handlers as ",s-1,s-2," for the "mine" queue.
ALTER TABLE tickets ADD COLUMN co_handlers TEXT NOT NULL DEFAULT '';

-- SLA clocks at risk (warning) or breached, from sla-timer's events: the
-- "at risk" queue. A clock met is removed.
CREATE TABLE ticket_sla_risk (
    ticket_id TEXT NOT NULL,
    clock     TEXT NOT NULL,
    state     TEXT NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, clock)
);
