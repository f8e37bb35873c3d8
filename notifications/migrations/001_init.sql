-- Every notification, as the seed's email_notifications: one row per source record.
CREATE TABLE email_notifications (
    id               bigserial PRIMARY KEY,
    source_topic     text        NOT NULL,
    source_partition integer     NOT NULL,
    source_offset    bigint      NOT NULL,
    template         text        NOT NULL,
    recipient        text        NOT NULL,
    organization_id  bigint,
    tenant           text        NOT NULL DEFAULT 'default',
    message_id       text        NOT NULL,
    status           text        NOT NULL DEFAULT 'created'
                     CHECK (status IN ('created', 'sending', 'sent', 'failed')),
    error            text,
    attempts         integer     NOT NULL DEFAULT 0,
    args             jsonb       NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    UNIQUE (source_topic, source_partition, source_offset, template)
);
CREATE INDEX email_notifications_status ON email_notifications (status);

-- Templates by code; an organization's override is stored under `tenant-orgid-code`.
CREATE TABLE templates (
    code       text PRIMARY KEY,
    subject    text NOT NULL,
    text_body  text NOT NULL,
    html_body  text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Offsets for mails sent through POST /mails (their "source" is the API, not a Kafka record).
CREATE SEQUENCE direct_mails;
