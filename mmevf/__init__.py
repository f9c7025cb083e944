"""mmevf: text prompts for Segment Anything (EVF-SAM, DIT) as OpenMMLab modules."""
from .utils import atomic_io, compat  # noqa: F401  (dependency fixes, atomic checkpoint writes)
from .version import __version__

__all__ = ['__version__']
