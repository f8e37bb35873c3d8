-- One notification per message: an event published twice (a relay that crashed between Kafka's
-- acknowledgement and its own bookkeeping publishes it again, at a new offset) is still one
-- email, because its Message-ID (e.g. invoice-<id>) is the same.
CREATE UNIQUE INDEX email_notifications_message ON email_notifications (message_id);
