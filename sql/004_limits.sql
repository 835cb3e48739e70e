-- Per-caller rate limits and the per-organization cap on concurrent streams, shared by every
-- instance. Instances lease request tokens and stream slots here in batches and spend them in
-- memory, so the hot path does not write per request (see app/services/limits.py).

-- NULL: the server's default (MODELGATE_RATE_LIMIT_PER_MINUTE).
ALTER TABLE api_keys ADD COLUMN rate_limit_per_minute integer CHECK (rate_limit_per_minute > 0);
-- NULL: the server's default (MODELGATE_MAX_CONCURRENT_STREAMS).
ALTER TABLE organizations ADD COLUMN max_concurrent_streams integer CHECK (max_concurrent_streams > 0);

-- Request tokens leased per caller in one fixed UTC minute. `used` counts every token leased to any
-- instance, spent or not, so it never exceeds the caller's limit.
CREATE TABLE rate_limit_windows (
    -- The API key's id; for a JWT caller, an id derived from its organization and subject. No
    -- foreign key, for that reason: rows are deleted a minute or two after their window ends.
    caller_id uuid NOT NULL,
    window_start timestamptz NOT NULL,
    used integer NOT NULL CHECK (used >= 0),
    -- The size of the latest lease, so the leasing statement can return it (RETURNING shows only
    -- the new row).
    last_lease integer NOT NULL CHECK (last_lease >= 0),
    PRIMARY KEY (caller_id, window_start)
);
CREATE INDEX rate_limit_windows_start_idx ON rate_limit_windows (window_start);

-- Stream slots an instance holds for an organization. A row whose heartbeat is older than the
-- lease timeout belongs to a dead instance and no longer counts.
CREATE TABLE stream_slot_leases (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    instance_id uuid NOT NULL,
    slots integer NOT NULL CHECK (slots > 0),
    heartbeat_at timestamptz NOT NULL,
    PRIMARY KEY (organization_id, instance_id)
);
CREATE INDEX stream_slot_leases_instance_idx ON stream_slot_leases (instance_id);
