"""The IoU of every pair of masks, shared by the metrics, the visualizer and its hook."""
import torch
from torch import Tensor


def pairwise_mask_iou(masks: Tensor, empty_iou: float = 1.0) -> Tensor:
    """(N, H, W) bool masks -> (N, N) float64 IoU of every pair.

    Two empty masks are identical, so their IoU is ``empty_iou`` (1.0 by default).
    """
    flat = masks.flatten(1).double()
    intersection = flat @ flat.T
    area = flat.sum(1)
    union = area[:, None] + area[None, :] - intersection
    iou = intersection / union.clamp(min=1)
    return torch.where(union == 0, torch.full_like(iou, empty_iou), iou)
