-- Per-day rollups of ticket_facts, kept at ingest in the same unit of work
-- (a fact row that changes moves its contribution: old row subtracted,
-- new row added). Keyed by the local day of receipt and every filter
-- dimension; the week is the day's ISO week. Queries on whole local days
-- read these instead of the fact rows (see docs/analytics.md).
--
-- is_repeat: the customer (pseudonym) had another ticket in the 30 days
-- before this one (same instant: the smaller id is earlier). Decided at
-- ingest, and raised or lowered on the customer's other tickets when an
-- earlier ticket arrives late.
ALTER TABLE ticket_facts ADD COLUMN is_repeat INTEGER NOT NULL DEFAULT 0;

CREATE TABLE ticket_rollups (
    day                TEXT NOT NULL,
    week               TEXT NOT NULL,
    channel            TEXT NOT NULL,
    type_code          TEXT NOT NULL,
    cause_code         TEXT NOT NULL,
    department         TEXT NOT NULL,
    priority           TEXT NOT NULL,
    region             TEXT NOT NULL,
    tier               TEXT NOT NULL,
    tickets            BIGINT NOT NULL,
    resolved           BIGINT NOT NULL,
    reopened           BIGINT NOT NULL,
    with_customer      BIGINT NOT NULL,
    repeats            BIGINT NOT NULL,
    reclassified       BIGINT NOT NULL,
    rated              BIGINT NOT NULL,
    score_sum          BIGINT NOT NULL,
    score_low          BIGINT NOT NULL,
    score_1            BIGINT NOT NULL,
    score_2            BIGINT NOT NULL,
    score_3            BIGINT NOT NULL,
    score_4            BIGINT NOT NULL,
    score_5            BIGINT NOT NULL,
    response_speed_n   BIGINT NOT NULL,
    response_speed_sum BIGINT NOT NULL,
    result_n           BIGINT NOT NULL,
    result_sum         BIGINT NOT NULL,
    attitude_n         BIGINT NOT NULL,
    attitude_sum       BIGINT NOT NULL,
    communication_n    BIGINT NOT NULL,
    communication_sum  BIGINT NOT NULL,
    PRIMARY KEY (day, channel, type_code, cause_code, department, priority, region, tier)
);

-- Existing facts: the repeat flags, then the rollups (the same SQL as
-- rollup::rebuild_from_facts).
UPDATE ticket_facts SET is_repeat = 1 WHERE customer_key <> '' AND EXISTS (
    SELECT 1 FROM ticket_facts p WHERE p.customer_key = ticket_facts.customer_key
      AND p.ticket_id <> ticket_facts.ticket_id AND p.received_ms >= ticket_facts.received_ms - 2592000000
      AND (p.received_ms < ticket_facts.received_ms
           OR (p.received_ms = ticket_facts.received_ms AND p.ticket_id < ticket_facts.ticket_id)));

INSERT INTO ticket_rollups
SELECT day, MIN(week), channel, type_code, cause_code, department, priority, region, tier,
    COUNT(*),
    SUM(CASE WHEN ever_resolved <> 0 THEN 1 ELSE 0 END),
    SUM(CASE WHEN reopen_count > 0 THEN 1 ELSE 0 END),
    SUM(CASE WHEN customer_key <> '' THEN 1 ELSE 0 END),
    SUM(CASE WHEN customer_key <> '' AND is_repeat <> 0 THEN 1 ELSE 0 END),
    SUM(CASE WHEN reclassified <> 0 THEN 1 ELSE 0 END),
    COUNT(score),
    COALESCE(SUM(score), 0),
    SUM(CASE WHEN score <= 3 THEN 1 ELSE 0 END),
    SUM(CASE WHEN score = 1 THEN 1 ELSE 0 END),
    SUM(CASE WHEN score = 2 THEN 1 ELSE 0 END),
    SUM(CASE WHEN score = 3 THEN 1 ELSE 0 END),
    SUM(CASE WHEN score = 4 THEN 1 ELSE 0 END),
    SUM(CASE WHEN score = 5 THEN 1 ELSE 0 END),
    SUM(CASE WHEN score IS NOT NULL AND response_speed IS NOT NULL THEN 1 ELSE 0 END),
    COALESCE(SUM(CASE WHEN score IS NOT NULL THEN response_speed END), 0),
    SUM(CASE WHEN score IS NOT NULL AND result IS NOT NULL THEN 1 ELSE 0 END),
    COALESCE(SUM(CASE WHEN score IS NOT NULL THEN result END), 0),
    SUM(CASE WHEN score IS NOT NULL AND attitude IS NOT NULL THEN 1 ELSE 0 END),
    COALESCE(SUM(CASE WHEN score IS NOT NULL THEN attitude END), 0),
    SUM(CASE WHEN score IS NOT NULL AND communication IS NOT NULL THEN 1 ELSE 0 END),
    COALESCE(SUM(CASE WHEN score IS NOT NULL THEN communication END), 0)
FROM ticket_facts
GROUP BY day, channel, type_code, cause_code, department, priority, region, tier;
