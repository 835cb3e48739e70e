-- Organizations, projects and API keys: the tenancy every other table hangs from.

CREATE TABLE organizations (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    -- The identity provider's id for this organization (e.g. a Stytch organization_id): JWTs name it.
    external_id text UNIQUE,
    plan text NOT NULL CHECK (plan IN ('FREE', 'PRO', 'ENTERPRISE')),
    monthly_credit_limit numeric(20, 6) CHECK (monthly_credit_limit >= 0),
    auto_migrate_end_of_life boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX organizations_name_key ON organizations (lower(name));

CREATE TABLE projects (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX projects_name_key ON projects (organization_id, lower(name));

CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    -- NULL only for platform-admin keys.
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    project_id uuid REFERENCES projects (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    prefix text NOT NULL UNIQUE,
    secret_hash bytea NOT NULL,
    role text CHECK (role IN ('ADMIN', 'DEVELOPER', 'VIEWER')),
    permissions text[] NOT NULL,
    is_platform_admin boolean NOT NULL DEFAULT false,
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (is_platform_admin = (organization_id IS NULL))
);
CREATE INDEX api_keys_organization_idx ON api_keys (organization_id, created_at, id);
