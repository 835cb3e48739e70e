-- The model catalog: system prompt compositions, connections (credential sets), models.
-- Secret columns hold AES-256-GCM ciphertexts (app/secrets.py), bound to their row id and column.

CREATE TABLE system_prompts (
    id uuid PRIMARY KEY,
    -- NULL: a platform-wide composition, managed by platform admins.
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description text CHECK (char_length(description) <= 2000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX system_prompts_name_key
    ON system_prompts (coalesce(organization_id, '00000000-0000-0000-0000-000000000000'), lower(name));

CREATE TABLE system_prompt_particles (
    system_prompt_id uuid NOT NULL REFERENCES system_prompts (id) ON DELETE CASCADE,
    position integer NOT NULL CHECK (position >= 0),
    kind text NOT NULL CHECK (kind IN ('ROLE', 'CONTEXT', 'TONE', 'FORMAT', 'GUARDRAILS', 'CUSTOM')),
    text text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 50000),
    PRIMARY KEY (system_prompt_id, position)
);

CREATE TABLE connections (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    provider text NOT NULL,
    description text CHECK (char_length(description) <= 2000),
    token_ciphertext bytea,
    client_key_ciphertext bytea,
    secret_key_ciphertext bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((client_key_ciphertext IS NULL) = (secret_key_ciphertext IS NULL))
);
CREATE UNIQUE INDEX connections_name_key ON connections (organization_id, lower(name));

CREATE TABLE models (
    id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('SYSTEM', 'USER')),
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    scope text CHECK (scope IN ('ORGANIZATION', 'PROJECT')),
    project_id uuid REFERENCES projects (id) ON DELETE CASCADE,
    -- A user model's system model; its inherited fields below are then NULL (inherit).
    parent_id uuid REFERENCES models (id),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description text CHECK (char_length(description) <= 2000),
    provider text,
    provider_model_id text,
    model_url text,
    model_group text NOT NULL CHECK (model_group IN ('CHAT', 'COMPLETION', 'EMBEDDING')),
    api_type text NOT NULL DEFAULT 'CHAT_COMPLETION' CHECK (api_type IN ('CHAT_COMPLETION', 'RESPONSES')),
    context_window integer CHECK (context_window BETWEEN 1 AND 2000000),
    max_output_tokens integer CHECK (max_output_tokens BETWEEN 1 AND 200000),
    capabilities text[],
    credit_multiplier numeric(12, 6) CHECK (credit_multiplier >= 0),
    access_tier text CHECK (access_tier IN ('STANDARD', 'PREMIUM')),
    is_visible boolean NOT NULL DEFAULT true,
    is_recommended boolean NOT NULL DEFAULT false,
    enabled boolean NOT NULL DEFAULT true,
    end_of_life_at timestamptz,
    deprecation_notice text CHECK (char_length(deprecation_notice) <= 2000),
    replacement_model_id uuid REFERENCES models (id),
    system_prompt_id uuid REFERENCES system_prompts (id) ON DELETE SET NULL,
    system_prompt_override text CHECK (char_length(system_prompt_override) <= 50000),
    provider_settings jsonb NOT NULL DEFAULT '{}',
    token_ciphertext bytea,
    client_key_ciphertext bytea,
    secret_key_ciphertext bytea,
    connection_id uuid REFERENCES connections (id),
    is_default boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'USER' OR (organization_id IS NULL AND scope IS NULL AND parent_id IS NULL
                             AND connection_id IS NULL)),
    CHECK (kind = 'SYSTEM' OR (organization_id IS NOT NULL AND scope IS NOT NULL)),
    CHECK ((scope = 'PROJECT') = (project_id IS NOT NULL)),
    CHECK (NOT is_default OR scope = 'PROJECT'),
    CHECK (max_output_tokens IS NULL OR context_window IS NULL OR max_output_tokens <= context_window),
    CHECK ((client_key_ciphertext IS NULL) = (secret_key_ciphertext IS NULL))
);
CREATE UNIQUE INDEX models_name_key
    ON models (coalesce(organization_id, '00000000-0000-0000-0000-000000000000'), lower(name));
-- At most one default model per project.
CREATE UNIQUE INDEX models_one_default_per_project ON models (project_id) WHERE is_default;
CREATE INDEX models_organization_idx ON models (organization_id, lower(name), id);
CREATE INDEX models_parent_idx ON models (parent_id) WHERE parent_id IS NOT NULL;

-- Organization-scoped models may be limited to some projects; none listed: every project.
CREATE TABLE model_project_assignments (
    model_id uuid NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    PRIMARY KEY (model_id, project_id)
);
CREATE INDEX model_project_assignments_project_idx ON model_project_assignments (project_id);

-- A project model's ordered fallbacks.
CREATE TABLE model_fallbacks (
    model_id uuid NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    position integer NOT NULL CHECK (position >= 0),
    fallback_model_id uuid NOT NULL REFERENCES models (id),
    enabled boolean NOT NULL DEFAULT true,
    failed_requests integer NOT NULL CHECK (failed_requests BETWEEN 1 AND 1000),
    duration_minutes integer NOT NULL CHECK (duration_minutes BETWEEN 1 AND 10080),
    notify_emails text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (model_id, position),
    CHECK (fallback_model_id <> model_id)
);
CREATE INDEX model_fallbacks_target_idx ON model_fallbacks (fallback_model_id);
