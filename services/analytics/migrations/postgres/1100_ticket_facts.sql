-- One row per ticket: what analytics needs to answer, never a contact.
-- Times are epoch milliseconds; day/week/hour are local (policy time zone)
-- at receipt. Columns describing the ticket's current state follow the
-- newest version seen (out-of-order events are ignored for them); the
-- first response and resolution times are the earliest seen, the reopen
-- count and the correction flag the largest: all independent of order.
CREATE TABLE ticket_facts (
    ticket_id       TEXT PRIMARY KEY,
    version         BIGINT NOT NULL,
    received_ms     BIGINT NOT NULL,
    day             TEXT NOT NULL,
    week            TEXT NOT NULL,
    hour            BIGINT NOT NULL,
    channel         TEXT NOT NULL,
    type_code       TEXT NOT NULL,
    cause_code      TEXT NOT NULL,
    department      TEXT NOT NULL,
    priority        TEXT NOT NULL,
    region          TEXT NOT NULL,
    tier            TEXT NOT NULL,
    -- Keyed pseudonym of the customer (HMAC by intake): counts repeats only.
    customer_key    TEXT NOT NULL,
    status          TEXT NOT NULL,
    is_open         BIGINT NOT NULL,
    responded_ms    BIGINT,
    resolved_ms     BIGINT,
    ever_resolved   BIGINT NOT NULL,
    reopen_count    BIGINT NOT NULL,
    reclassified    BIGINT NOT NULL,
    common_issue_id TEXT NOT NULL,
    score_version   BIGINT NOT NULL,
    score           BIGINT,
    response_speed  BIGINT,
    result          BIGINT,
    attitude        BIGINT,
    communication   BIGINT
);
CREATE INDEX ticket_facts_received ON ticket_facts (received_ms);
CREATE INDEX ticket_facts_customer ON ticket_facts (customer_key, received_ms);

-- Outcome of each SLA clock (response, resolution, ...) of a ticket, from
-- sla.evt.*: flags only ever go up, so order does not matter.
CREATE TABLE sla_outcomes (
    ticket_id   TEXT NOT NULL,
    clock       TEXT NOT NULL,
    deadline_ms BIGINT,
    warned      BIGINT NOT NULL,
    met         BIGINT NOT NULL,
    breached    BIGINT NOT NULL,
    PRIMARY KEY (ticket_id, clock)
);

-- Tickets linked to a common issue, and when.
CREATE TABLE issue_links (
    common_issue_id TEXT NOT NULL,
    ticket_id       TEXT NOT NULL,
    linked_ms       BIGINT NOT NULL,
    PRIMARY KEY (common_issue_id, ticket_id)
);

-- Weekly reports announced (once per week).
CREATE TABLE published_reports (
    period       TEXT PRIMARY KEY,
    report_id    TEXT NOT NULL,
    published_ms BIGINT NOT NULL
);
