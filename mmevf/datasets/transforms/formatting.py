"""Packing referring-segmentation samples for the model."""
import torch
from mmcv.transforms import to_tensor
from mmdet.datasets.transforms import PackDetInputs

from mmevf.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackReferInputs(PackDetInputs):
    """mmdet's ``PackDetInputs`` plus the inputs of the multimodal encoder.

    ``inputs`` becomes a dict: ``img`` (3, h, w) uint8 (the SAM branch, BGR as loaded) and
    ``mm_img`` (3, 224, 224) float (see :class:`SAMResize`). With an embedding cache
    (:class:`LoadCachedEmbedding`) the SAM branch is ``img_embed`` (C, h', w') in the cache's
    dtype instead of ``img``, with ``img_embed_key`` (32,) uint8, the cache key's bytes, for the
    model's check. The data sample keeps mmdet's layout — ``gt_instances.masks`` and the
    ``gt_masks`` meta key hold one mask per expression at the original size — and gains
    ``text_ids`` (list of LongTensor, one per expression). A generalised referring dataset
    (:class:`GReferSegDataset`) also gives ``no_target`` (list of bool, one per expression: the
    expression names nothing and its mask is empty), packed as a meta key; as every meta key,
    only when the results have it, so other datasets' samples do not get one.
    """

    def __init__(self,
                 meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                            'flip', 'flip_direction', 'text', 'gt_masks', 'no_target')) -> None:
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        inputs = {}
        if 'inputs' in packed:
            inputs['img'] = packed['inputs']
        if 'img_embed' in results:
            inputs['img_embed'] = torch.as_tensor(results['img_embed'])
            inputs['img_embed_key'] = torch.tensor(
                list(bytes.fromhex(results['img_embed_key'])), dtype=torch.uint8)
        if not inputs:
            raise KeyError(f'{results.get("img_path", "<array>")}: nothing to pack for the SAM '
                           'branch (neither img nor img_embed)')
        if 'mm_img' in results:
            inputs['mm_img'] = to_tensor(results['mm_img']).float()
        packed['inputs'] = inputs
        if 'text_ids' in results:
            packed['data_samples'].text_ids = [
                torch.as_tensor(ids, dtype=torch.long) for ids in results['text_ids']
            ]
        return packed
