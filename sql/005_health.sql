-- Model health shared by every instance (consecutive failures, trips), and the notification outbox.

CREATE TABLE model_health (
    model_id uuid PRIMARY KEY REFERENCES models (id) ON DELETE CASCADE,
    consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    -- Calls skip the model in favour of its fallbacks until then; a past time means it recovered
    -- (no write is needed for that).
    tripped_until timestamptz,
    last_failure_code text,
    last_failure_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Messages for people, written in the same transaction as the event they report; a sender
-- delivers them and sets sent_at.
CREATE TABLE notification_outbox (
    id uuid PRIMARY KEY,
    -- NULL: about a system model, for the platform rather than an organization.
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    kind text NOT NULL,
    recipients text[] NOT NULL CHECK (cardinality(recipients) > 0),
    subject text NOT NULL,
    body text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz
);
-- An organization's notifications, newest first.
CREATE INDEX notification_outbox_organization_idx
    ON notification_outbox (organization_id, created_at DESC, id DESC);
