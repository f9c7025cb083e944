"""EVF-Effi-SAM: EVF-SAM with EfficientSAM in place of SAM."""
from mmevf.models.segmentors.evf_sam import EVFSAM
from mmevf.registry import MODELS


@MODELS.register_module()
class EVFEffiSAM(EVFSAM):
    """EVF-Effi-SAM (EVF-SAM paper, Tab. 7): BEiT-3 + projector prompting EfficientSAM.

    :class:`~mmevf.models.EVFSAM`'s forward with ``EfficientSAMImageEncoder`` and
    ``EfficientSAMPromptHead``: the image is encoded once, each expression's projected
    [CLS] is its image's query ``(1, N_i, 1, 256)`` (the official ``feat.unsqueeze(0)``),
    EfficientSAM's decoder returns token 0 (256² logits for a 1024² input), resized bilinearly
    straight to the original size. The data pipeline stretches the image to the encoder's
    square input (``EffiSAMResize``), so nothing is padded or cropped.

    EfficientSAM's decoder takes text only here: points / boxes are not wired
    (``supports_geometric_prompts = False``; its prompt encoder embeds them, but EVF-Effi
    never mixes them with text).
    """
    supports_geometric_prompts = False
