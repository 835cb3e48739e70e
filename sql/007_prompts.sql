-- Prompts: a project's reusable templates, and the runs kept of them.

CREATE TABLE prompts (
    id uuid PRIMARY KEY,
    -- The project's organization, kept here so that scoping a prompt needs no join.
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    template text NOT NULL CHECK (char_length(template) BETWEEN 1 AND 100000),
    -- NULL: the project's default model at run time; a deleted model leaves its prompts on the default.
    model_id uuid REFERENCES models (id) ON DELETE SET NULL,
    system_prompt text CHECK (char_length(system_prompt) <= 50000),
    temperature double precision CHECK (temperature BETWEEN 0 AND 2),
    max_tokens integer CHECK (max_tokens BETWEEN 1 AND 200000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX prompts_name_key ON prompts (project_id, lower(name));
CREATE INDEX prompts_project_idx ON prompts (project_id, created_at, id);
-- For ON DELETE SET NULL when a model is deleted.
CREATE INDEX prompts_model_idx ON prompts (model_id) WHERE model_id IS NOT NULL;

CREATE TABLE prompt_runs (
    id uuid PRIMARY KEY,
    prompt_id uuid NOT NULL REFERENCES prompts (id) ON DELETE CASCADE,
    rendered_prompt text NOT NULL,
    variables jsonb NOT NULL,
    output text,
    input_tokens integer NOT NULL,
    output_tokens integer NOT NULL,
    credits numeric(20, 6) NOT NULL,
    -- No foreign key: a run keeps naming the model that served it, as usage rows do.
    served_model_id uuid,
    status text NOT NULL CHECK (status IN ('SUCCESS', 'ERROR')),
    error_code text,
    error_message text,
    -- The call's request id: the same as its usage row's.
    request_id text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    CHECK ((status = 'ERROR') = (error_code IS NOT NULL))
);
-- A prompt's runs newest first (by start), and its latest run.
CREATE INDEX prompt_runs_latest_idx ON prompt_runs (prompt_id, started_at DESC, id DESC);
