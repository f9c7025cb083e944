"""High-level APIs: text-prompted segmentation of images."""
from mmevf.checkpoint import load_weights
from .inference_inputs import config_root, resolve_config
from .input_pairing import pair_inputs
from .text_seg_inferencer import TextSegInferencer

__all__ = ['TextSegInferencer', 'config_root', 'load_weights', 'pair_inputs', 'resolve_config']
