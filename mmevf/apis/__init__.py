"""High-level APIs: text-prompted segmentation of images."""
from .text_seg_inferencer import TextSegInferencer, load_weights, resolve_config

__all__ = ['TextSegInferencer', 'load_weights', 'resolve_config']
