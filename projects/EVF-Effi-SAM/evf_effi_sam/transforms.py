"""EfficientSAM's input: the image stretched to a square (no aspect ratio, no padding)."""
import mmcv

from mmevf.datasets.transforms.sam_resize import SAMResize
from mmevf.registry import TRANSFORMS


@TRANSFORMS.register_module()
class EffiSAMResize(SAMResize):
    """:class:`~mmevf.datasets.SAMResize` for EfficientSAM: the SAM branch is the whole
    image stretched to ``sam_size`` x ``sam_size`` with Pillow's (antialiased) bilinear
    filter, as EVF-Effi's training and evaluation data (``utils/dataset.py::Resize(1024)``);
    the BEiT-3 branch is unchanged. ``img_shape`` becomes (sam_size, sam_size), so the data
    preprocessor pads nothing."""

    def transform(self, results: dict) -> dict:
        img = results['img']
        if self.mm_size is not None:
            results['mm_img'] = self.mm_image(img)
        h, w = img.shape[:2]
        size = self.sam_size
        results['img'] = mmcv.imresize(img, (size, size), interpolation='bilinear',
                                       backend='pillow')
        results['img_shape'] = (size, size)
        results['scale_factor'] = (size / w, size / h)
        results['keep_ratio'] = False
        return results
