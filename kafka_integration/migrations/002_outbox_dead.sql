-- Events the relay could not publish and never will as they are (too large, invalid topic,
-- not encodable): moved here with the error, out of the outbox's way, in the same transaction
-- as their delete from it. `python -m kafka_integration dead-letters` lists, re-publishes
-- (back into the outbox, behind what is there) or discards them.
CREATE TABLE kafka_outbox_dead (
    id         bigint      PRIMARY KEY,  -- its id in kafka_outbox
    topic      text        NOT NULL,
    key        text        NOT NULL,
    value      bytea,
    headers    jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    error      text        NOT NULL,
    dead_at    timestamptz NOT NULL DEFAULT now()
);
