-- Audit log: every staff action and every read of contacts or originals in
-- clear, with the acting staff id. No personal data: staff ids, roles, RPC
-- names and feedback/ticket ids only.
CREATE TABLE kesu_audit (
    id         TEXT    PRIMARY KEY,
    at         INTEGER NOT NULL,
    staff_id   TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    department TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    subject_id TEXT    NOT NULL,
    outcome    TEXT    NOT NULL
);
CREATE INDEX kesu_audit_staff ON kesu_audit (staff_id, at);
CREATE INDEX kesu_audit_subject ON kesu_audit (subject_id, at);
