-- What operators did through the console (or its commands): replays of dead letters and retries
-- of failed notifications, with who did it and where the replayed record went.
CREATE TABLE console_actions (
    id          bigserial   PRIMARY KEY,
    action      text        NOT NULL CHECK (action IN ('replay', 'retry')),
    actor       text        NOT NULL,
    source      text        NOT NULL,  -- e.g. 'materializer:notifications_dead_letters/0/12', 'outbox:orders/7', 'notification:42'
    target      text,                  -- where it went: 'invoices/1/40', 'outbox id 12'
    detail      jsonb       NOT NULL DEFAULT '{}',
    done_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_actions_source ON console_actions (source);
-- A dead letter is replayed once (a second click, a second command, changes nothing).
CREATE UNIQUE INDEX console_actions_replayed ON console_actions (source) WHERE action = 'replay';
