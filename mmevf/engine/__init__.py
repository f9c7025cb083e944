from .hooks import *  # noqa: F401,F403
from .optim_constructor import TrainableParamsOptimWrapperConstructor

__all__ = ['TrainableParamsOptimWrapperConstructor']
