-- Feedback intake has taken: the record as announced (personal data masked
-- or sealed) and the submission exactly as received.
CREATE TABLE feedback (
    feedback_id      TEXT    PRIMARY KEY,
    feedback_number  TEXT    NOT NULL UNIQUE,
    channel          TEXT    NOT NULL,
    external_id      TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    customer_key     TEXT    NOT NULL,
    received_at      BIGINT    NOT NULL,
    record           BYTEA   NOT NULL,
    original         BYTEA   NOT NULL,
    original_subject TEXT    NOT NULL,
    UNIQUE (channel, external_id)
);
CREATE INDEX feedback_customer ON feedback (customer_key, received_at);
CREATE INDEX feedback_status ON feedback (status, received_at);

-- Daily serials of feedback numbers, per local date (YYYYMMDD).
CREATE TABLE daily_serials (
    day         TEXT  PRIMARY KEY,
    last_serial BIGINT  NOT NULL
);

-- Submissions that could not be taken, kept with their errors.
CREATE TABLE rejected_submissions (
    rejection_id TEXT  PRIMARY KEY,
    subject      TEXT  NOT NULL,
    channel      TEXT  NOT NULL,
    external_id  TEXT  NOT NULL,
    received_at  BIGINT  NOT NULL,
    record       BYTEA NOT NULL
);
CREATE INDEX rejected_received ON rejected_submissions (received_at);
