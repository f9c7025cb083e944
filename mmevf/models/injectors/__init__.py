from .dit_text_injector import DITTextInjector
from .text_cross_attention import TextCrossAttention

__all__ = ['DITTextInjector', 'TextCrossAttention']
