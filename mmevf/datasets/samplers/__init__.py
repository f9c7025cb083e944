from .ratio_source_sampler import RatioSourceSampler

__all__ = ['RatioSourceSampler']
