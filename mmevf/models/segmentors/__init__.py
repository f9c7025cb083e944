from .dit_sam import DITSam
from .evf_sam import EVFSAM
from .sam_pretrainer import SAMPretrainer

__all__ = ['DITSam', 'EVFSAM', 'SAMPretrainer']
