-- Fuzzy duplicates (issue 8). One row per customer, upserted before the
-- comparison so that replicas sharing a database take turns per customer.
CREATE TABLE dedup_customers (
    customer_key TEXT     PRIMARY KEY,
    touched_at   BIGINT   NOT NULL
);

-- Submissions merged into an earlier feedback of the same customer with
-- near-identical text, kept as received; (channel, external_id) stays
-- idempotent for them too.
CREATE TABLE merged_submissions (
    channel         TEXT     NOT NULL,
    external_id     TEXT     NOT NULL,
    feedback_id     TEXT     NOT NULL,
    feedback_number TEXT     NOT NULL,
    received_at     BIGINT   NOT NULL,
    original        BYTEA     NOT NULL,
    PRIMARY KEY (channel, external_id)
);
