from .evf_sam import EVFSAM

__all__ = ['EVFSAM']
