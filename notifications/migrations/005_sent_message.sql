-- The message exactly as it went to the SMTP server (headers, text and HTML parts: the bytes of
-- the DATA command), written by the same UPDATE that marks the notification `sent`: what the
-- recipient saw, even after its template has changed. NULL for a notification not sent yet, and
-- for one sent before this column existed (the console says so).
ALTER TABLE email_notifications ADD COLUMN sent_message bytea;
