from .evf_resize import EVFResize
from .formatting import PackReferInputs
from .tokenize import TokenizeText

__all__ = ['EVFResize', 'PackReferInputs', 'TokenizeText']
