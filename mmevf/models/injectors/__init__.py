from .dit_text_injector import DITTextInjector

__all__ = ['DITTextInjector']
