"""A model's effective system prompt: its override, else its composition, else its parent's."""

from __future__ import annotations

from app.domain.models import EffectiveModel
from app.services.system_prompts import SystemPromptService


class EffectiveSystemPrompts:
    def __init__(self, system_prompts: SystemPromptService) -> None:
        self.system_prompts = system_prompts

    async def for_model(self, model: EffectiveModel) -> str | None:
        for record in (model.record, model.parent):
            if record is None:
                continue
            if record.system_prompt_override:
                return record.system_prompt_override
            if record.system_prompt_id is not None:
                text = await self.system_prompts.text_for(record.system_prompt_id)
                if text:
                    return text
        return None
