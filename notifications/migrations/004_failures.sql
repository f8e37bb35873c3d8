-- Attempts that failed with neither an SMTP refusal nor an unreachable server (those have their
-- own handling): after a bounded number the notification is `failed`, never swept up again.
ALTER TABLE email_notifications ADD COLUMN failures integer NOT NULL DEFAULT 0;
