"""The SAM image branch (and the multimodal encoder's view), prepared from the original image."""
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from segment_anything.utils.transforms import ResizeLongestSide

from mmevf.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SAMResize(BaseTransform):
    """Resize the image for SAM's image encoder and, optionally, for a multimodal encoder.

    Shared by every SAM-based model (EVF-SAM, DIT, SAMPretrainer); both branches follow the
    official EVF-SAM preprocessing; normalisation and padding happen in
    :class:`~mmevf.models.SAMDataPreprocessor`.

    - SAM branch: longest side to ``sam_size`` keeping the aspect ratio, with Pillow's
      antialiased bilinear filter on the uint8 image and ``int(x + 0.5)`` rounding of the new
      size (segment_anything's ``ResizeLongestSide.apply_image``). Replaces ``img``.
    - Multimodal branch (BEiT-3, CLIP or ViLT): the *original* RGB image as float in [0, 1],
      stretched to ``mm_size`` with bicubic interpolation, no antialias and no clamping
      (torchvision's ``ToTensor`` + tensor ``Resize(antialias=None)``). Stored as ``mm_img``.

    Required keys: ``img`` (H, W, 3) uint8 BGR.
    Modified keys: ``img`` (h, w, 3) with max(h, w) = sam_size, ``img_shape``, ``scale_factor``.
    Added keys: ``mm_img`` (3, mm_size, mm_size) float32 RGB tensor, ``keep_ratio``.

    Args:
        sam_size: longest side of the SAM-branch image: the image encoder's ``img_size``
            (SAM: 1024; the data preprocessor checks it).
        mm_size: side of the square multimodal-encoder input (BEiT-3: 224); ``None`` for
            models without a multimodal image branch (DIT): no ``mm_img`` is made.
    """

    def __init__(self, sam_size: int = 1024, mm_size: Optional[int] = 224) -> None:
        self.sam_size = sam_size
        self.mm_size = mm_size

    def mm_image(self, img: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 BGR -> (3, mm_size, mm_size) float32 RGB, about [0, 1]."""
        rgb = torch.from_numpy(np.ascontiguousarray(img[..., ::-1])).permute(2, 0, 1)
        rgb = rgb.float().div(255)[None]
        size: Tuple[int, int] = (self.mm_size, self.mm_size)
        return F.interpolate(rgb, size, mode='bicubic', align_corners=False)[0]

    def transform(self, results: dict) -> dict:
        img = results['img']
        if self.mm_size is not None:
            results['mm_img'] = self.mm_image(img)
        h, w = img.shape[:2]
        resized = ResizeLongestSide(self.sam_size).apply_image(img)  # channel order kept
        new_h, new_w = resized.shape[:2]
        results['img'] = resized
        results['img_shape'] = (new_h, new_w)
        results['scale_factor'] = (new_w / w, new_h / h)
        results['keep_ratio'] = True
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(sam_size={self.sam_size}, mm_size={self.mm_size})'
