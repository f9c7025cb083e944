from .bert_text_encoder import BertTextEncoder
from .hf_text_encoder import HFTextEncoder

__all__ = ['BertTextEncoder', 'HFTextEncoder']
