"""Tokenisation of the referring expressions of a sample."""
from typing import Optional

from mmcv.transforms import BaseTransform

from mmevf.registry import TRANSFORMS
from mmevf.utils.tokenizer import build_tokenizer


@TRANSFORMS.register_module()
class TokenizeText(BaseTransform):
    """Tokenise every expression in ``text`` with a local ``transformers`` tokenizer.

    For XLM-R (EVF-SAM) an expression becomes ``[<s>=0, sentencepiece ids + 1, </s>=2]``; the
    text is not lower-cased or altered, so ``[semantic] {class}`` prompts pass through untouched.

    Required keys: ``text`` (list of str, or one str).
    Added keys: ``text_ids`` (list of list of int, one per expression).

    Args:
        tokenizer: folder of the tokenizer (see :func:`mmevf.utils.tokenizer.build_tokenizer`).
        max_length: truncate longer expressions to this many tokens (special tokens included);
            ``None`` keeps them whole, as the official inference does.
    """

    def __init__(self, tokenizer: str, max_length: Optional[int] = None) -> None:
        self.tokenizer_path = tokenizer
        self.max_length = max_length
        self.tokenizer = build_tokenizer(tokenizer)

    def transform(self, results: dict) -> dict:
        texts = results['text']
        texts = [texts] if isinstance(texts, str) else list(texts)
        for i, text in enumerate(texts):
            if not text or not text.strip():
                raise ValueError(f'empty expression #{i} for image '
                                 f'{results.get("img_path", "<array>")}')
        encoded = self.tokenizer(
            texts, truncation=self.max_length is not None, max_length=self.max_length)
        results['text_ids'] = [list(ids) for ids in encoded['input_ids']]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(tokenizer={self.tokenizer_path!r}, '
                f'max_length={self.max_length})')
