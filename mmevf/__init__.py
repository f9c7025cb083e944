"""mmevf: text prompts for Segment Anything (EVF-SAM, DIT) as OpenMMLab modules."""
from .utils import compat  # noqa: F401  (applies the dependency fixes before anything else)
from .version import __version__

__all__ = ['__version__']
