-- The transactional outbox: events are written here in the same transaction as the row they
-- describe, and the relay publishes and deletes them after commit, in id order.
CREATE TABLE kafka_outbox (
    id         bigserial PRIMARY KEY,
    topic      text        NOT NULL,
    key        text        NOT NULL,
    value      bytea,
    headers    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
