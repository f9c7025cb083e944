"""Packing referring-segmentation samples for the model."""
import torch
from mmcv.transforms import to_tensor
from mmdet.datasets.transforms import PackDetInputs

from mmevf.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackReferInputs(PackDetInputs):
    """mmdet's ``PackDetInputs`` plus the inputs of the multimodal encoder.

    ``inputs`` becomes a dict: ``img`` (3, h, w) uint8 (the SAM branch, BGR as loaded) and
    ``beit_img`` (3, 224, 224) float (see :class:`SAMResize`). The data sample keeps mmdet's
    layout — ``gt_instances.masks`` and the ``gt_masks`` meta key hold one mask per expression
    at the original size — and gains ``text_ids`` (list of LongTensor, one per expression).
    """

    def __init__(self,
                 meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                            'flip', 'flip_direction', 'text', 'gt_masks')) -> None:
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        inputs = dict(img=packed['inputs'])
        if 'beit_img' in results:
            inputs['beit_img'] = to_tensor(results['beit_img']).float()
        packed['inputs'] = inputs
        if 'text_ids' in results:
            packed['data_samples'].text_ids = [
                torch.as_tensor(ids, dtype=torch.long) for ids in results['text_ids']
            ]
        return packed
