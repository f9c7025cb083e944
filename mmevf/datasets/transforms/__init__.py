from .evf_resize import EVFResize
from .formatting import PackReferInputs
from .text_flip import TextAwareRandomFlip, swap_left_right
from .tokenize import TokenizeText

__all__ = [
    'EVFResize', 'PackReferInputs', 'TextAwareRandomFlip', 'TokenizeText', 'swap_left_right'
]
