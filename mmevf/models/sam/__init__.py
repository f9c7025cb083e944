from .image_encoder import SAMImageEncoder

__all__ = ['SAMImageEncoder']
