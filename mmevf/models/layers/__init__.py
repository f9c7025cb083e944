from .fused_linear import fused_linear

__all__ = ['fused_linear']
