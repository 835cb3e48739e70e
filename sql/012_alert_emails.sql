-- An organization's alert email recipients: every event of the organization is emailed to them
-- (app/repositories/outbox.py adds them to each event's deliveries as it is written). Checked
-- (syntax, no duplicates ignoring case) by app/domain/tenancy.py; at most 20.
ALTER TABLE organizations ADD COLUMN alert_emails text[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(alert_emails) <= 20);
