-- A credential goes only where its owner chose (app/domain/destinations.py).
--
-- Connections own their endpoint: the URL and the destination settings of their provider.
ALTER TABLE connections
    ADD COLUMN model_url text CHECK (char_length(model_url) <= 2000),
    ADD COLUMN provider_settings jsonb NOT NULL DEFAULT '{}';

-- Rows written before the rule could point a credential they did not supply elsewhere. Calls no
-- longer read such fields (the target is built from the credential owner's destination); these
-- updates make what is stored say what happens.
--
-- A model with credentials of its own and a connection was always called with its own: it keeps
-- them and its own destination, and drops the connection it never used for credentials.
UPDATE models SET connection_id = NULL
WHERE connection_id IS NOT NULL AND (token_ciphertext IS NOT NULL OR client_key_ciphertext IS NOT NULL);
-- A model using a connection takes the connection's endpoint (set it on the connection), and a
-- variant its parent's destination whole.
UPDATE models
SET provider_settings = provider_settings - ARRAY[
        'baseCustomUrl', 'apiEndpoint', 'resourceName', 'deploymentName', 'location', 'projectId',
        'region', 'customAuthHeader', 'clientKeyHeader', 'secretKeyHeader'],
    model_url = NULL
WHERE connection_id IS NOT NULL OR parent_id IS NOT NULL;
