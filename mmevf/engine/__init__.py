from .hooks import *  # noqa: F401,F403
from .optim_constructor import TrainableParamsOptimWrapperConstructor
from .optim_wrappers import AnyDeviceAmpOptimWrapper

__all__ = ['AnyDeviceAmpOptimWrapper', 'TrainableParamsOptimWrapperConstructor']
