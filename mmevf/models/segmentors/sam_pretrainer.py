"""SAM's own promptable-segmentation training (points and boxes from the ground truth), for
models that have no released SAM weights: the CPU-sized SAM of the embedded default."""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmdet.structures.mask import mask2bbox
from torch import Tensor

from mmevf.registry import MODELS
from .base import BaseSAMSegmentor, LowResOutput


@MODELS.register_module()
class SAMPretrainer(BaseSAMSegmentor):
    """SAM (image encoder + prompt encoder + mask decoder) trained as SAM was: each
    ground-truth mask is prompted by a random point inside it and, for a ``box_prob`` share
    of the images, its box too. The paper's SAM comes pre-trained this way on SA-1B; a small
    SAM trained this way on SynthRef's masks (``configs/sam/sam-tiny_synthref.py``) can play
    that part for the tiny EVF-SAM and DIT models, through
    ``tools/model_converters/mmevf2sam.py`` and ``init_cfg=dict(type='StrictPretrained',
    layout='sam', ...)``.

    Referring-segmentation data serve as they are: every expression brings one mask, the texts
    are not used. Evaluation prompts each mask with the point of its interior farthest from
    the border (deterministic), so the usual metric scores SAM's point-prompted masks.

    Args:
        image_encoder: ``SAMImageEncoder`` config (trainable here).
        prompt_head: ``SAMPromptHead`` config; its sizes are derived from the image encoder.
        data_preprocessor: ``SAMDataPreprocessor`` config (no BEiT-3 view needed).
        box_prob: probability that a training image's masks are prompted by their boxes too.
        box_noise: box corners move by up to this fraction of the box side (SAM: 10 %).
    """

    def __init__(self,
                 image_encoder: dict,
                 prompt_head: dict,
                 data_preprocessor: Optional[dict] = None,
                 box_prob: float = 0.5,
                 box_noise: float = 0.1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type='SAMDataPreprocessor'),
                         init_cfg=init_cfg)
        self.build_sam(image_encoder, prompt_head)
        self.box_prob = box_prob
        self.box_noise = box_noise

    def decode_batch(self, inputs: Dict[str, Tensor], data_samples: list) -> List[LowResOutput]:
        """Per image: (N_i, 1, 4h, 4w) low-resolution logits and (N_i, 1) IoUs, one per
        ground-truth mask, prompted from the masks (:meth:`prompts_from_masks`)."""
        if data_samples is None:
            raise ValueError('SAMPretrainer prompts from the ground-truth masks: give '
                             'data_samples')
        image_embeddings = self.image_embeddings(inputs)
        outputs = []
        for i, sample in enumerate(data_samples):
            points, boxes = self.prompts_from_masks(sample, image_embeddings.device)
            outputs.append(self.prompt_head(image_embeddings[i:i + 1], points=points,
                                            boxes=boxes))
        return outputs

    def prompts_from_masks(self, sample, device: Union[str, torch.device] = 'cpu'
                           ) -> Tuple[Tuple[Tensor, Tensor], Optional[Tensor]]:
        """Prompts of the sample's N masks in input-image pixels: ((N, 1, 2) xy points,
        (N, 1) labels), and (N, 4) xyxy boxes or ``None``.

        In training the points are uniform random mask pixels and, with probability
        ``box_prob`` per image, the noisy boxes come too (SAM embeds a point alone with a
        padding token and a point with a box with the two corners, so one image's prompts
        are of one kind). In evaluation each mask gets its innermost pixel and no box.
        """
        masks = sample.gt_instances.masks.to_tensor(torch.bool, 'cpu')
        if masks.shape[0] == 0 or not masks.flatten(1).any(1).all():
            raise ValueError(f'{sample.img_path}: an empty ground-truth mask cannot be prompted')
        height, width = masks.shape[1:]
        if self.training:
            flat = torch.multinomial(masks.flatten(1).float(), 1)[:, 0]
        else:
            flat = innermost_pixels(masks)
        points = torch.stack([flat % width, flat // width], 1).float() + 0.5
        scale = torch.tensor([sample.img_shape[1] / width, sample.img_shape[0] / height])
        points = (points * scale)[:, None].to(device)
        labels = torch.ones(points.shape[:2], device=device)
        boxes = None
        if self.training and float(torch.rand(())) < self.box_prob:
            boxes = (mask_boxes(masks, self.box_noise) * scale.repeat(2)).to(device)
        return (points, labels), boxes


def innermost_pixels(masks: Tensor) -> Tensor:
    """(N, H, W) bool masks -> (N,) flat index of a pixel farthest from the background (the
    middle pixel of what survives the most 3 x 3 erosions)."""
    inner = masks[:, None].float()
    last = inner
    while True:
        inner = -F.max_pool2d(-inner, 3, 1, 1)  # erosion (pixels outside the image do not count)
        alive = inner.flatten(1).any(1)
        if not alive.any():
            break
        last = torch.where(alive[:, None, None, None], inner, last)
    flat = last.flatten(1)
    order = torch.cumsum(flat, 1)  # pick the middle surviving pixel of each mask
    middle = (flat.sum(1, keepdim=True) / 2).ceil()
    return (order < middle).sum(1)


def mask_boxes(masks: Tensor, noise: float) -> Tensor:
    """(N, H, W) bool masks -> (N, 4) xyxy boxes (mmdet's ``mask2bbox``: tight, right / bottom
    edges exclusive), each corner moved by up to ``noise`` of the box side (SAM's box
    augmentation)."""
    boxes = mask2bbox(masks)
    side = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + (torch.rand_like(boxes) * 2 - 1) * noise * side
