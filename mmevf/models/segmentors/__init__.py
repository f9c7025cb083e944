from .dit_sam import DITSam
from .evf_sam import EVFSAM

__all__ = ['DITSam', 'EVFSAM']
