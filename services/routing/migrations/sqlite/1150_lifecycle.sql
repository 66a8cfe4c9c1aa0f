-- One rating per ticket and survey round (staff or customer): a second
-- rating, or a reused customer token, is refused.
CREATE TABLE ratings (
    ticket_id    TEXT NOT NULL,
    survey_round INTEGER NOT NULL,
    source       TEXT NOT NULL,
    score        INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, survey_round)
);

-- Customer ratings refused (bad or reused token, bad score), kept as sent.
CREATE TABLE rejected_ratings (
    id          TEXT PRIMARY KEY,
    channel     TEXT NOT NULL,
    ticket_id   TEXT NOT NULL,
    external_id TEXT NOT NULL,
    field       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at          INTEGER NOT NULL,
    original    BLOB NOT NULL
);
CREATE INDEX rejected_ratings_at ON rejected_ratings (at, id);

-- The case library: archived tickets' analyses (kesu.v1.CaseEntry).
CREATE TABLE case_library (
    archive_number TEXT PRIMARY KEY,
    ticket_id      TEXT NOT NULL UNIQUE,
    type_code      TEXT NOT NULL,
    cause_code     TEXT NOT NULL,
    search_text    TEXT NOT NULL,
    archived_at    INTEGER NOT NULL,
    record         BLOB NOT NULL
);
CREATE INDEX case_library_type ON case_library (type_code, archived_at);
