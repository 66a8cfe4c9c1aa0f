-- Needs info and supplements (issue 8). `amended` is the submission with
-- the supplements and review corrections applied (NULL: the original as
-- received); `version` counts the record's changes (events' aggregate
-- version).
ALTER TABLE feedback ADD COLUMN amended BYTEA;
ALTER TABLE feedback ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- Every supplement and review correction, as received.
CREATE TABLE feedback_amendments (
    amendment_id TEXT     PRIMARY KEY,
    feedback_id  TEXT     NOT NULL,
    kind         TEXT     NOT NULL,
    actor        TEXT     NOT NULL,
    received_at  BIGINT   NOT NULL,
    original     BYTEA     NOT NULL
);
CREATE INDEX feedback_amendments_feedback ON feedback_amendments (feedback_id, received_at);
