from .no_target_head import NoTargetHead
from .prompt_grounding_head import PromptGroundingHead
from .sam_prompt_head import SAMPromptHead

__all__ = ['NoTargetHead', 'PromptGroundingHead', 'SAMPromptHead']
