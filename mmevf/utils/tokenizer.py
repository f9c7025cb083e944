"""Tokenizers from local folders through ``transformers`` (no hub access)."""
import os.path as osp
from typing import Optional

from transformers import AutoTokenizer, PreTrainedTokenizerBase

# Files that let AutoTokenizer pick the tokenizer class by itself.
_CONFIG_FILES = ('tokenizer_config.json', 'tokenizer.json')
# XLM-R's sentencepiece model as shipped in EVF-SAM / BEiT-3 checkpoint folders.
_XLMR_MODEL = 'sentencepiece.bpe.model'
# BERT's WordPiece vocabulary as shipped in bert-base-uncased folders.
_BERT_VOCAB = 'vocab.txt'


def build_tokenizer(path: str, tokenizer_type: Optional[str] = None) -> PreTrainedTokenizerBase:
    """Load the tokenizer stored in the folder ``path``.

    A folder with ``tokenizer_config.json`` / ``tokenizer.json`` (an EVF-SAM checkpoint, BERT)
    loads as described there; a folder holding only XLM-R's ``sentencepiece.bpe.model`` loads
    as XLM-R, one holding only ``vocab.txt`` as (uncased) BERT. Constructing ``XLMRobertaTokenizer(vocab_file=...)`` directly is avoided on
    purpose: with transformers 5 it silently maps every piece to ``<unk>``.

    Args:
        path: the tokenizer folder.
        tokenizer_type: force a transformers tokenizer type (e.g. ``'xlm-roberta'``, ``'bert'``).
    """
    if not osp.isdir(path):
        raise FileNotFoundError(f'tokenizer folder {path} does not exist')
    has_config = any(osp.isfile(osp.join(path, name)) for name in _CONFIG_FILES)
    if tokenizer_type is None and not has_config:
        if osp.isfile(osp.join(path, _XLMR_MODEL)):
            tokenizer_type = 'xlm-roberta'
        elif osp.isfile(osp.join(path, _BERT_VOCAB)):
            tokenizer_type = 'bert'
        else:
            raise FileNotFoundError(f'{path} holds no tokenizer: expected one of '
                                    f'{_CONFIG_FILES + (_XLMR_MODEL, _BERT_VOCAB)}')
    kwargs = dict(tokenizer_type=tokenizer_type) if tokenizer_type else {}
    return AutoTokenizer.from_pretrained(path, padding_side='right', local_files_only=True,
                                         **kwargs)
