-- The seed's organization invitations: a customer invited to an organization.
-- state moves pending -> ready (accepted) or pending -> rejected, and nowhere else.
CREATE TABLE organization_associations (
    id              bigserial PRIMARY KEY,
    organization_id bigint      NOT NULL REFERENCES organizations (id),
    customer_id     bigint      NOT NULL REFERENCES customers (id),
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'ready', 'rejected')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, customer_id)
);
CREATE INDEX organization_associations_customer ON organization_associations (customer_id);
