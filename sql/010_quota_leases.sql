-- Monthly credit limits across instances: each instance leases blocks of an organization's
-- remaining monthly budget here and reserves every call's maximum cost from its block in memory
-- (see app/services/quota.py). An organization's remaining budget for a month is its limit, minus
-- its written usage (organization_monthly_credits), minus what its live instances hold here.

-- An instance that holds leases, and when it last said it is alive. Leases of an instance silent
-- longer than the lease timeout (a crashed or cut-off one) no longer count.
CREATE TABLE quota_instances (
    instance_id uuid PRIMARY KEY,
    renewed_at timestamptz NOT NULL
);

-- What one instance holds of one organization's budget for one UTC calendar month: credits
-- reserved by its calls in flight, credits its finished calls spent whose usage rows are not
-- written yet, and spare. Writing usage rows moves their credits from here to
-- organization_monthly_credits in the same statement. Below zero when calls cost more than they
-- reserved (the instance covers that at its next lease).
CREATE TABLE quota_leases (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    month date NOT NULL,
    -- No foreign key to quota_instances: leases go with their instance's row when it is forgotten.
    instance_id uuid NOT NULL,
    credits numeric(20, 6) NOT NULL,
    PRIMARY KEY (organization_id, month, instance_id)
);
CREATE INDEX quota_leases_instance_idx ON quota_leases (instance_id);
