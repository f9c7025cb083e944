"""High-level APIs: text-prompted segmentation of images."""
from mmevf.checkpoint import load_weights
from .inference_inputs import config_root, resolve_config
from .text_seg_inferencer import TextSegInferencer

__all__ = ['TextSegInferencer', 'config_root', 'load_weights', 'resolve_config']
