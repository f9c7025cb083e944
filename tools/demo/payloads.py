"""What crosses HTTP in the demo: uploads decoded and checked, expressions cleaned, masks and
drawings encoded; :class:`DemoError` names what a request got wrong."""
import base64
import binascii
from typing import Any, List, Sequence

import numpy as np

SEMANTIC_PREFIX = '[semantic] '
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # decoded file size
MAX_PIXELS = 40_000_000
MAX_EXPRESSIONS = 16


class DemoError(Exception):
    """A request the demo cannot serve; ``str(error)`` is shown to the user as it is."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def decode_data_url(data: str) -> bytes:
    """A ``data:...;base64,`` URL (what the page's FileReader gives) or plain base64 -> bytes."""
    if not isinstance(data, str) or not data.strip():
        raise DemoError('no image: upload an image or pick an example')
    if data.startswith('data:'):
        header, sep, data = data.partition(',')
        if not sep or ';base64' not in header:
            raise DemoError('the upload is not a base64 data URL')
    if len(data) > MAX_UPLOAD_BYTES * 4 // 3 + 8:
        raise DemoError(f'the upload is larger than {MAX_UPLOAD_BYTES // 2**20} MB', 413)
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise DemoError('the upload is not valid base64') from None
    if not content:
        raise DemoError('the uploaded file is empty')
    return content


def decode_image(content: bytes, name: str = 'the uploaded file') -> np.ndarray:
    """Image file bytes -> (H, W, 3) uint8 BGR, decoded as the inferencer's loader decodes
    image files (mmcv, cv2 backend, ``color``), so an upload gives the same pixels as its
    path would."""
    import mmcv
    try:
        image = mmcv.imfrombytes(content, flag='color', backend='cv2')
    except Exception:  # cv2 raises on some malformed headers instead of returning None
        image = None
    if image is None or image.ndim != 3 or image.size == 0:
        raise DemoError(f'cannot decode {name}: it is not an image (JPEG, PNG, BMP, WebP, '
                        f'TIFF), or it is corrupt')
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise DemoError(f'{name} is too large: {image.shape[1]} x {image.shape[0]} pixels '
                        f'(at most {MAX_PIXELS // 10**6} megapixels)', 413)
    return image


def clean_texts(texts: Sequence[Any], semantic: bool) -> List[str]:
    """The expressions as the model gets them: stripped, ``[semantic] `` prefixed when the
    toggle is on (not twice); an empty one is an error naming it."""
    if not isinstance(texts, (list, tuple)) or not texts:
        raise DemoError('no expression: type what to segment, one expression per line')
    if len(texts) > MAX_EXPRESSIONS:
        raise DemoError(f'{len(texts)} expressions: at most {MAX_EXPRESSIONS} at a time')
    cleaned = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DemoError(f'expression {i + 1} is not text: {text!r}')
        if not text.strip():
            raise DemoError(f'expression {i + 1} is empty: type what to segment')
        text = ' '.join(text.split())
        if semantic and not text.startswith(SEMANTIC_PREFIX.strip()):
            text = SEMANTIC_PREFIX + text
        cleaned.append(text)
    return cleaned


def png_data_url(image: np.ndarray) -> str:
    """(H, W) or (H, W, 3) BGR uint8 -> ``data:image/png;base64,...``."""
    import cv2
    ok, encoded = cv2.imencode('.png', image)
    if not ok:
        raise RuntimeError('PNG encoding failed')
    return 'data:image/png;base64,' + base64.b64encode(encoded.tobytes()).decode('ascii')
