-- Reports that may make a common issue: one per ticket with a type and
-- cause, keyed by type, cause and product; linked once an issue exists.
CREATE TABLE common_issue_reports (
    ticket_id       TEXT PRIMARY KEY,
    issue_key       TEXT NOT NULL,
    customer_key    TEXT NOT NULL,
    reported_at     BIGINT NOT NULL,
    common_issue_id TEXT NOT NULL
);
CREATE INDEX common_issue_reports_key ON common_issue_reports (issue_key, reported_at);

-- One row per key, updated by every report: replicas deciding about the
-- same key take turns (row lock), so they never open two issues.
CREATE TABLE common_issue_keys (
    issue_key TEXT PRIMARY KEY,
    reports   BIGINT NOT NULL
);

-- Common issues (kesu.v1.CommonIssue); open_key is the issue key while the
-- issue is open (unique: one open issue per key), NULL once fixed.
CREATE TABLE common_issues (
    common_issue_id TEXT PRIMARY KEY,
    issue_key       TEXT NOT NULL,
    open_key        TEXT UNIQUE,
    status          TEXT NOT NULL,
    department      TEXT NOT NULL,
    opened_at       BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    record          BYTEA NOT NULL
);
CREATE INDEX common_issues_opened ON common_issues (opened_at, common_issue_id);
