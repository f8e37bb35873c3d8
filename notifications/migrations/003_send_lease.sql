-- A sender leases a notification before talking to SMTP, so two workers (or a sweep and a live
-- sender) never send the same row at the same time; a lease left by a crash expires.
ALTER TABLE email_notifications ADD COLUMN lease_until timestamptz;
CREATE INDEX email_notifications_pending ON email_notifications (tenant, id) WHERE status IN ('created', 'sending');
