-- Usage metering: one row per gateway call, and each organization's running total per month.

CREATE TABLE usage_records (
    -- Assigned when the call is recorded, so that writing a batch again after an unclear outcome
    -- (a commit whose acknowledgement was lost) inserts nothing twice.
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- No foreign keys to projects, API keys or models: usage outlives them.
    project_id uuid,
    api_key_id uuid,
    caller text NOT NULL,
    operation text NOT NULL,
    requested_model_id uuid,
    served_model_id uuid,
    provider text,
    input_tokens integer NOT NULL,
    output_tokens integer NOT NULL,
    credits numeric(20, 6) NOT NULL,
    latency_ms integer NOT NULL,
    time_to_first_token_ms integer,
    status text NOT NULL,
    error_code text,
    request_id text NOT NULL,
    created_at timestamptz NOT NULL
);
-- Deliberately no CHECK constraints beyond NOT NULL: rows arrive in batches, and one row a
-- constraint refused would fail its whole batch on every retry.
CREATE INDEX usage_records_report_idx ON usage_records (organization_id, created_at);

-- Kept in step with usage_records by the statement that inserts them, so that an organization's
-- spend this month (the quota) is one row to read. `month` is the first day of a UTC calendar month.
CREATE TABLE organization_monthly_credits (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    month date NOT NULL,
    credits numeric(20, 6) NOT NULL,
    PRIMARY KEY (organization_id, month)
);
