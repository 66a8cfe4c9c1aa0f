-- Round robin among equally suited handlers: when each was last given a
-- new ticket (epoch ms) and how many in all.
CREATE TABLE handler_assignments (
    handler          TEXT PRIMARY KEY,
    last_assigned_at BIGINT NOT NULL,
    assigned         BIGINT NOT NULL
);
