-- The current (unrotated) tokens of a family: a rotation retires every
-- other one (refresh.Decision.RetireOthers) and must not scan the family's
-- whole history to find them.
CREATE INDEX refresh_tokens_current ON refresh_tokens (family_id) WHERE rotated_at IS NULL;
