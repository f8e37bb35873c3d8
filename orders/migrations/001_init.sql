-- The seed's orders service: orders, invoices (one per order) and their line items.
CREATE TABLE orders (
    id              bigserial PRIMARY KEY,
    po              text,
    organization_id bigint      NOT NULL,
    customer_id     bigint      NOT NULL,
    date            timestamptz NOT NULL,
    deliver_date    timestamptz NOT NULL,
    state           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (deliver_date > date)
);
CREATE INDEX orders_organization ON orders (organization_id, id);

CREATE TABLE invoices (
    id              bigserial PRIMARY KEY,
    order_id        bigint UNIQUE REFERENCES orders (id),
    po              text,
    organization_id bigint        NOT NULL,
    customer_id     bigint        NOT NULL,
    date            timestamptz   NOT NULL,
    deliver_date    timestamptz   NOT NULL,
    state           text,
    total           numeric(13,2) NOT NULL DEFAULT 0,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    CHECK (deliver_date > date)
);
CREATE INDEX invoices_organization ON invoices (organization_id, id);

-- Items belong to an order or an invoice (the seed's polymorphic `itemable`).
CREATE TABLE items (
    id            bigserial PRIMARY KEY,
    itemable_type text          NOT NULL CHECK (itemable_type IN ('Order', 'Invoice')),
    itemable_id   bigint        NOT NULL,
    quantity      integer       NOT NULL CHECK (quantity > 0),
    description   text          NOT NULL,
    code          text          NOT NULL,
    amount        numeric(11,2) NOT NULL CHECK (amount >= 0),
    created_at    timestamptz   NOT NULL DEFAULT now(),
    updated_at    timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX items_itemable ON items (itemable_type, itemable_id, id);
