"""High-level APIs: text-prompted segmentation of images."""
from .inference_inputs import config_root, load_weights, resolve_config
from .text_seg_inferencer import TextSegInferencer

__all__ = ['TextSegInferencer', 'config_root', 'load_weights', 'resolve_config']
