from .no_target_head import NoTargetHead
from .sam_prompt_head import SAMPromptHead

__all__ = ['NoTargetHead', 'SAMPromptHead']
