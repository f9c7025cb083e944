"""SAM-2's input: the image stretched to sam_size x sam_size (no aspect ratio kept, no pad)."""
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mmevf.datasets.transforms import SAMResize
from mmevf.registry import TRANSFORMS

BACKENDS = ('pil', 'uint8', 'sam2')


@TRANSFORMS.register_module()
class SAM2Resize(SAMResize):
    """:class:`SAMResize` for SAM-2: the SAM branch is stretched to ``sam_size`` squared
    (EVF-SAM2 and SAM-2 resize to 1024², where SAM-1 resizes the longest side and pads).
    The BEiT-3 branch is ``SAMResize``'s. Normalisation happens in ``SAMDataPreprocessor``
    (with SAM-2's ImageNet mean / std on the 0-255 scale; nothing is padded).

    Args:
        sam_size: SAM-2's ``image_size`` (1024).
        mm_size: side of the BEiT-3 input (224).
        backend: the resampler, as the official code paths differ:

            - ``'pil'``: Pillow bilinear (antialiased) on the uint8 image, the official
              EVF-SAM2 evaluation and training datasets (``utils/dataset.py::Resize``);
            - ``'uint8'``: ``F.interpolate(bilinear)`` on the uint8 tensor, the official
              ``inference.py`` / ``demo.py``;
            - ``'sam2'``: ``SAM2ImagePredictor``'s transform (float [0, 1] tensor, torchvision
              ``Resize``), stored as float32 on the 0-255 scale.
    """

    def __init__(self, sam_size: int = 1024, mm_size: Optional[int] = 224,
                 backend: str = 'pil') -> None:
        super().__init__(sam_size=sam_size, mm_size=mm_size)
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
        self.backend = backend

    def stretch(self, img: np.ndarray) -> np.ndarray:
        size = (self.sam_size, self.sam_size)
        if self.backend == 'pil':
            return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c]))
                                        .resize(size, Image.BILINEAR))
                             for c in range(img.shape[2])], axis=-1)
        chw = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
        if self.backend == 'uint8':
            out = F.interpolate(chw, size, mode='bilinear', align_corners=False)
        else:
            from torchvision.transforms import Resize  # as sam2.utils.transforms
            out = Resize(size)(chw.float() / 255) * 255
        return out[0].permute(1, 2, 0).numpy()

    def transform(self, results: dict) -> dict:
        img = results['img']
        if self.mm_size is not None:
            results['mm_img'] = self.mm_image(img)
        h, w = img.shape[:2]
        results['img'] = self.stretch(img)
        results['img_shape'] = (self.sam_size, self.sam_size)
        results['scale_factor'] = (self.sam_size / w, self.sam_size / h)
        results['keep_ratio'] = False
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(sam_size={self.sam_size}, mm_size={self.mm_size}, '
                f'backend={self.backend!r})')
