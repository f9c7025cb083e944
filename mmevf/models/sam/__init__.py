from .backbone_image_encoder import BackboneImageEncoder
from .image_encoder import SAMImageEncoder

__all__ = ['BackboneImageEncoder', 'SAMImageEncoder']
