-- Deleting a project deletes its models; references to them from models elsewhere must not block
-- that. A replacement that disappears is cleared; a fallback entry naming it goes with it.
-- (modelDelete itself still refuses while a model is referenced, naming who uses it.)
ALTER TABLE models DROP CONSTRAINT models_replacement_model_id_fkey,
    ADD CONSTRAINT models_replacement_model_id_fkey
        FOREIGN KEY (replacement_model_id) REFERENCES models (id) ON DELETE SET NULL;
ALTER TABLE model_fallbacks DROP CONSTRAINT model_fallbacks_fallback_model_id_fkey,
    ADD CONSTRAINT model_fallbacks_fallback_model_id_fkey
        FOREIGN KEY (fallback_model_id) REFERENCES models (id) ON DELETE CASCADE;
