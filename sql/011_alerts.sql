-- Alerts that reach people: every event in notification_outbox gets one delivery per recipient
-- (an email address, or a webhook of its organization), drained by a relay on any instance.

-- One event, once: the key names what happened (e.g. a model's trip until a given time), so that
-- instances that see the same thing write it once. Rows from before this migration keep their id.
ALTER TABLE notification_outbox ADD COLUMN event_key text;
UPDATE notification_outbox SET event_key = 'legacy:' || id::text;
ALTER TABLE notification_outbox ALTER COLUMN event_key SET NOT NULL;
ALTER TABLE notification_outbox ADD CONSTRAINT notification_outbox_event_key_key UNIQUE (event_key);
-- Events for webhooks only (no email recipients) are written too.
ALTER TABLE notification_outbox DROP CONSTRAINT notification_outbox_recipients_check;
ALTER TABLE notification_outbox ADD COLUMN html_body text NOT NULL DEFAULT '';

-- Where an organization's events are POSTed, signed with its secret (sealed like credentials).
CREATE TABLE webhooks (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url text NOT NULL CHECK (char_length(url) BETWEEN 1 AND 2000),
    -- The event kinds sent; empty: every kind.
    events text[] NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    secret_key_ciphertext bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_organization_idx ON webhooks (organization_id, created_at, id);

-- One row per recipient of an event: at most one delivery per recipient, whatever the instances.
-- A relay claims due rows (FOR UPDATE SKIP LOCKED) until claimed_until; a claim that expired
-- (its instance died between claim and send) is taken again.
CREATE TABLE notification_deliveries (
    id uuid PRIMARY KEY,
    notification_id uuid NOT NULL REFERENCES notification_outbox (id) ON DELETE CASCADE,
    channel text NOT NULL CHECK (channel IN ('EMAIL', 'WEBHOOK')),
    email text,
    -- NULL once the webhook is deleted (the delivery's history stays).
    webhook_id uuid REFERENCES webhooks (id) ON DELETE SET NULL,
    state text NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'SENT', 'FAILED')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz,
    last_error text,
    sent_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((channel = 'EMAIL') = (email IS NOT NULL))
);
CREATE UNIQUE INDEX notification_deliveries_email_key
    ON notification_deliveries (notification_id, email) WHERE channel = 'EMAIL';
CREATE UNIQUE INDEX notification_deliveries_webhook_key
    ON notification_deliveries (notification_id, webhook_id) WHERE channel = 'WEBHOOK';
CREATE INDEX notification_deliveries_due_idx
    ON notification_deliveries (next_attempt_at) WHERE state = 'PENDING';
CREATE INDEX notification_deliveries_notification_idx ON notification_deliveries (notification_id);
