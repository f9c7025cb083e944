"""mmevf: text prompts for Segment Anything (EVF-SAM, DIT) as OpenMMLab modules."""
# Registers the local checkpoint loader (safe, safetensors, shards), the atomic checkpoint
# backend and the StrictPretrained initializer; see mmevf/checkpoint/ and mmevf/compat/.
from . import checkpoint  # noqa: F401
from .version import __version__

__all__ = ['__version__']
