-- The notifications' streams and tables, in ksqlDB's SQL (python -m materializer check notifications/streams.sql).
-- The seed's four statements come first, exactly as the seed wrote them (../shared/seed/kafka-and-rails.md);
-- what follows them is ours: the customers' owner, and the streams the worker emails from.

-- Organization
CREATE STREAM organizations_stream ( id INTEGER, name VARCHAR)
  WITH (kafka_topic='organizations', value_format='json', partitions=1);

CREATE TABLE organizations_table AS
SELECT id ,
       LATEST_BY_OFFSET(name) AS name
FROM organizations_stream
GROUP BY id
    EMIT CHANGES;

-- Customer
CREATE STREAM customers_stream ( id INTEGER, name VARCHAR , last_name VARCHAR , email VARCHAR, action VARCHAR)
WITH (kafka_topic='customers', value_format='json', partitions=1);

CREATE TABLE customers_table AS
SELECT id ,
       LATEST_BY_OFFSET(name) AS name,
       LATEST_BY_OFFSET(last_name) AS last_name,
       LATEST_BY_OFFSET(email) AS email,
       LATEST_BY_OFFSET(action) AS action
  FROM customers_stream
  GROUP BY id
  EMIT CHANGES;

CREATE TABLE customer_created AS
SELECT id ,
       name,
       last_name,
       email,
    action
    FROM customers_table
    WHERE action = 'created'
    EMIT CHANGES;

-- Order
CREATE STREAM orders_stream ( id INTEGER, po VARCHAR , organization_id INTEGER , customer_id INTEGER)
WITH (kafka_topic='orders', value_format='json', partitions=1);

DROP STREAM orders_created;
CREATE STREAM orders_created AS
SELECT  os.id ,
        os.po,
        os.organization_id,
        ot.name as organization_name,
        os.customer_id,
        ct.name as customer_name,
        ct.last_name AS customer_last_name,
        ct.email AS email
FROM orders_stream os
         INNER JOIN organizations_table ot ON os.organization_id = ot.id
         INNER JOIN customers_table ct ON os.customer_id = ct.id
    EMIT CHANGES;

-- Ours. A customer's owning organization (null: none): the API shows a customers_table row with it and
-- reads it to decide who may see the row; an invitation email is the owner's business.
CREATE STREAM customer_owners_stream ( id INTEGER, organization_id INTEGER)
WITH (kafka_topic='customers', value_format='json');

CREATE TABLE customer_owners AS
SELECT id ,
       LATEST_BY_OFFSET(organization_id) AS organization_id
  FROM customer_owners_stream
  GROUP BY id
  EMIT CHANGES;

-- Invoice email: each invoice created, with its organization's and customer's latest names.
CREATE STREAM invoices_stream ( id INTEGER, order_id INTEGER, po VARCHAR, organization_id INTEGER,
                                customer_id INTEGER, date VARCHAR, deliver_date VARCHAR, state VARCHAR,
                                total VARCHAR, items ARRAY<STRUCT<quantity INTEGER, description VARCHAR,
                                code VARCHAR, amount VARCHAR>>, action VARCHAR)
WITH (kafka_topic='invoices', value_format='json');

CREATE STREAM invoices_created AS
SELECT  inv.id, inv.order_id, inv.po, inv.organization_id, inv.customer_id, inv.date, inv.deliver_date,
        inv.state, inv.total, inv.items, inv.action,
        ot.name AS organization_name,
        ct.name AS customer_name,
        ct.last_name AS customer_last_name,
        ct.email AS email
FROM invoices_stream inv
         INNER JOIN organizations_table ot ON inv.organization_id = ot.id
         INNER JOIN customers_table ct ON inv.customer_id = ct.id
WHERE inv.action = 'created'
    EMIT CHANGES;

-- Welcome email: each customer created.
CREATE STREAM customers_created AS
SELECT id, name, last_name, email, action
FROM customers_stream
WHERE action = 'created'
    EMIT CHANGES;

-- Invitation email: each invitation of a customer to an organization (organization_associations).
CREATE STREAM invitations_stream ( id INTEGER, organization_id INTEGER, customer_id INTEGER, state VARCHAR,
                                   action VARCHAR)
WITH (kafka_topic='organization_associations', value_format='json');

CREATE STREAM invitations AS
SELECT  iv.id, iv.organization_id, iv.customer_id, iv.state, iv.action,
        ot.name AS organization_name,
        ct.name AS customer_name,
        ct.last_name AS customer_last_name,
        ct.email AS email,
        co.organization_id AS customer_organization_id
FROM invitations_stream iv
         INNER JOIN organizations_table ot ON iv.organization_id = ot.id
         INNER JOIN customers_table ct ON iv.customer_id = ct.id
         INNER JOIN customer_owners co ON iv.customer_id = co.id
WHERE iv.action = 'created'
    EMIT CHANGES;
