from .beit3 import BEiT3MultiwayEncoder

__all__ = ['BEiT3MultiwayEncoder']
