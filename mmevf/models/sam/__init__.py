from .attention import rel_pos_attention, sam_attention, sam_block
from .backbone_image_encoder import BackboneImageEncoder
from .image_encoder import SAMImageEncoder

__all__ = [
    'BackboneImageEncoder', 'SAMImageEncoder', 'rel_pos_attention', 'sam_attention', 'sam_block'
]
