from .formatting import PackReferInputs
from .load_cached_embedding import CachePlan, LoadCachedEmbedding, cache_plan
from .sam_resize import SAMResize
from .text_flip import TextAwareRandomFlip, swap_left_right
from .tokenize import TokenizeText

__all__ = [
    'CachePlan', 'LoadCachedEmbedding', 'PackReferInputs', 'SAMResize',
    'TextAwareRandomFlip', 'TokenizeText', 'cache_plan', 'swap_left_right'
]
