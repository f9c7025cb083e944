from .base import BaseSAMSegmentor
from .dit_sam import DITSAM
from .evf_sam import EVFSAM
from .sam_pretrainer import SAMPretrainer
from .text_prompt_segmentor import TextPromptSegmentor

__all__ = ['BaseSAMSegmentor', 'DITSAM', 'EVFSAM', 'SAMPretrainer', 'TextPromptSegmentor']
