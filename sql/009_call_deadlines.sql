-- How long one call on a model may take in all, retries and fallbacks included (NULL: the server's
-- default for the kind of call). A variant inherits its parent's.
ALTER TABLE models ADD COLUMN call_deadline_seconds integer
    CHECK (call_deadline_seconds BETWEEN 1 AND 3600);
