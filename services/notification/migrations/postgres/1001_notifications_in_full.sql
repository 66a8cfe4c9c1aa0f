-- Notifications in full: every rule of the table, quiet hours, senders.

-- What a delivery is about (the ticket, or its feedback before the ticket
-- exists, or a report), its recipient ("customer" or a staff id), the clear
-- address until address_until (the configured retention; erased after) and
-- the template data for resends.
ALTER TABLE deliveries ADD COLUMN about TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN feedback_id TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN recipient TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN address TEXT;
ALTER TABLE deliveries ADD COLUMN address_until BIGINT;
ALTER TABLE deliveries ADD COLUMN data TEXT NOT NULL DEFAULT '{}';
UPDATE deliveries SET about = ticket_id;
CREATE INDEX deliveries_about ON deliveries (about, requested_at);
CREATE INDEX deliveries_address_until ON deliveries (address_until);

-- The latest state of each ticket (kesu.v1.Ticket without its free text),
-- from ticket events applied by version: SLA events name only the ticket.
CREATE TABLE ticket_view (
    ticket_id   TEXT PRIMARY KEY,
    feedback_id TEXT NOT NULL,
    version     BIGINT NOT NULL,
    record      BYTEA NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX ticket_view_feedback ON ticket_view (feedback_id);

-- The built-in senders' record of each request they took: sent at most
-- once per request id (state sending → sent | failed), leased while an
-- attempt is in flight so another replica does not send it meanwhile.
CREATE TABLE sender_sends (
    request_id  TEXT PRIMARY KEY,
    channel     TEXT NOT NULL,
    sender      TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    provider_id TEXT,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX sender_sends_provider ON sender_sends (provider_id);
CREATE INDEX sender_sends_state ON sender_sends (channel, state);
