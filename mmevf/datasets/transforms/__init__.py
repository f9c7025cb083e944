from .sam_resize import SAMResize
EVFResize = SAMResize  # the name of the first release
from .formatting import PackReferInputs
from .text_flip import TextAwareRandomFlip, swap_left_right
from .tokenize import TokenizeText

__all__ = [
    'EVFResize', 'PackReferInputs', 'SAMResize', 'TextAwareRandomFlip', 'TokenizeText',
    'swap_left_right'
]
