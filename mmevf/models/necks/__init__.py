from .evf_projector import EVFProjector

__all__ = ['EVFProjector']
