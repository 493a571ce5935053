-- Prompt tokens the model read for a turn's reply after the caller was
-- done (the rest came from its cache); NULL for engines that do not say.
ALTER TABLE agent_turns ADD COLUMN llm_prompt_read BIGINT;
