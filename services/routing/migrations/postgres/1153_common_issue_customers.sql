-- Distinct customers with unlinked reports per issue key, and when each
-- last reported: deciding whether a key has enough customers reads this
-- (a few rows) instead of every report of the key (one prolific customer
-- made that grow with every ticket).
CREATE TABLE common_issue_customers (
    issue_key    TEXT NOT NULL,
    customer_key TEXT NOT NULL,
    last_at      BIGINT NOT NULL,
    PRIMARY KEY (issue_key, customer_key)
);
INSERT INTO common_issue_customers (issue_key, customer_key, last_at)
    SELECT issue_key, customer_key, MAX(reported_at) FROM common_issue_reports
    WHERE common_issue_id = '' GROUP BY issue_key, customer_key;

-- Customers of an open issue are counted by issue.
CREATE INDEX common_issue_reports_issue ON common_issue_reports (common_issue_id, customer_key);
