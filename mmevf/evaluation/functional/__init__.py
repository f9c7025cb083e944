from .mask_iou import pairwise_mask_iou

__all__ = ['pairwise_mask_iou']
