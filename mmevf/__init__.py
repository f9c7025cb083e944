"""mmevf: text prompts for Segment Anything (EVF-SAM, DIT) as OpenMMLab modules."""
# Registers the local checkpoint loader (safe, safetensors, shards), the atomic checkpoint
# backend and the StrictPretrained initializer; see mmevf/checkpoint/ and mmevf/compat/.
from . import checkpoint  # noqa: F401
from .compat.mmpretrain import fix_mmpretrain_import
from .version import __version__

# before anything (a config, a registry lookup) imports mmpretrain.models; see mmevf/compat/
fix_mmpretrain_import()

__all__ = ['__version__']
