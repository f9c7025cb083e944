"""Everything about weight files: reading them (:mod:`.io`), foreign layouts (:mod:`.layouts`),
loading them into modules (:mod:`.initializers`) and writing them atomically
(:mod:`.atomic_backend`)."""
from .atomic_backend import ATOMIC_BACKEND_ARGS, AtomicLocalBackend
from .initializers import (StrictPretrained, init_weights_pretrained_last,
                           load_state_dict_checked, load_weights)
from .io import load_local_checkpoint, read_state_dict
from .layouts import LAYOUTS, mmevf_to_sam, read_layout

__all__ = [
    'ATOMIC_BACKEND_ARGS', 'AtomicLocalBackend', 'LAYOUTS', 'StrictPretrained',
    'init_weights_pretrained_last', 'load_local_checkpoint', 'load_state_dict_checked',
    'load_weights', 'mmevf_to_sam', 'read_layout', 'read_state_dict'
]
