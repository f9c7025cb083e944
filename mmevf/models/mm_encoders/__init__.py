from .beit3 import BEiT3MultiwayEncoder
from .clip_encoder import CLIPEncoder
from .vilt_encoder import ViLTEncoder

__all__ = ['BEiT3MultiwayEncoder', 'CLIPEncoder', 'ViLTEncoder']
