-- A customer's owning organization: its members (and administrators) change or delete it; other
-- organizations read it only through a ready invitation. NULL: owned by no organization (the
-- seed's customers, created by an administrator), which only administrators change.
ALTER TABLE customers ADD COLUMN organization_id bigint REFERENCES organizations (id);
CREATE INDEX customers_organization ON customers (organization_id);
