"""The demo's segmentation service, without HTTP: a request's image and prompts in, one mask,
drawing and score per expression out, SAM's image encoder run once per image."""
import inspect
import os.path as osp
import threading
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from tools.demo.embedding_lru import ImageEmbeddingLRU
from tools.demo.payloads import (MAX_EXPRESSIONS, SEMANTIC_PREFIX, DemoError, clean_texts,
                                 decode_data_url, decode_image, png_data_url)


def list_examples(folder: Optional[str], limit: int = 6) -> Dict[str, Path]:
    """Up to ``limit`` image files of ``folder`` (sorted), by file name; none if it is
    missing."""
    if not folder or not osp.isdir(folder):
        return {}
    from mmevf.apis.input_pairing import list_images
    return {osp.basename(path): Path(path) for path in list_images(folder)[:limit]}


class DemoService:
    """What the page's requests do: decode, check, run the inferencer (one call per request,
    all expressions of the image in it), encode the results.

    The segmentor takes SAM image embeddings from :class:`ImageEmbeddingLRU` (its
    ``image_embedding_memo``) while the service is open; :meth:`close` detaches it.
    """

    def __init__(self, inferencer: Any, examples: Optional[Dict[str, Path]] = None,
                 cache_size: int = 8, model_name: str = '', weights: str = '') -> None:
        self.inferencer = inferencer
        self.examples = dict(examples or {})
        self.cache = ImageEmbeddingLRU(cache_size)
        inferencer.model.image_embedding_memo = self.cache
        self.model_name = model_name
        self.weights = weights
        params = inspect.signature(inferencer.__call__).parameters
        # another inferencer version may take SAM's points / boxes beside the expressions
        self.accepts = {name: name in params for name in ('points', 'boxes')}
        self._lock = threading.Lock()  # one inference at a time: the model is shared
        self.requests = 0

    def close(self) -> None:
        """The segmentor runs its image encoder on every image again."""
        if self.inferencer.model.image_embedding_memo is self.cache:
            self.inferencer.model.image_embedding_memo = None

    def info(self) -> dict:
        return dict(model=self.model_name, weights=self.weights, points=self.accepts['points'],
                    boxes=self.accepts['boxes'], examples=list(self.examples),
                    semantic_prefix=SEMANTIC_PREFIX, max_expressions=MAX_EXPRESSIONS,
                    cache=self.cache.stats())

    def example_path(self, name: str) -> Path:
        if name not in self.examples:
            raise DemoError(f'no example image named {name!r}', 404)
        return self.examples[name]

    def load(self, image: Optional[str], example: Optional[str]) -> np.ndarray:
        if example:
            path = self.example_path(example)
            return decode_image(path.read_bytes(), f'example {example}')
        return decode_image(decode_data_url(image))

    def check(self, image: Optional[str]) -> dict:
        array = decode_image(decode_data_url(image))
        return dict(width=int(array.shape[1]), height=int(array.shape[0]))

    def prompt_kwargs(self, points: Optional[list], box: Optional[list], width: int,
                      height: int, count: int) -> dict:
        """Points ``[[x, y, label], ...]`` (label 1 foreground, 0 background) and a box
        ``[x1, y1, x2, y2]`` in original image pixels, given with every one of the ``count``
        expressions: the inferencer's ``points=`` / ``boxes=`` for one image (one entry per
        expression)."""
        kwargs = {}
        if points:
            if not self.accepts['points']:
                raise DemoError('this model\'s inferencer takes no points: send expressions only')
            checked = []
            for point in points:
                if (not isinstance(point, (list, tuple)) or len(point) not in (2, 3)
                        or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                   for v in point)):
                    raise DemoError(f'a point is [x, y] or [x, y, label], got {point!r}')
                x, y = float(point[0]), float(point[1])
                label = int(point[2]) if len(point) == 3 else 1
                if not (0 <= x <= width and 0 <= y <= height) or label not in (0, 1):
                    raise DemoError(f'point {point!r} lies outside the {width} x {height} '
                                    f'image, or its label is not 0 / 1')
                checked.append((x, y, label))
            kwargs['points'] = [checked] * count
        if box:
            if not self.accepts['boxes']:
                raise DemoError('this model\'s inferencer takes no boxes: send expressions only')
            if (not isinstance(box, (list, tuple)) or len(box) != 4
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                               for v in box)):
                raise DemoError(f'a box is [x1, y1, x2, y2], got {box!r}')
            x1, y1, x2, y2 = (float(v) for v in box)
            x1, x2, y1, y2 = min(x1, x2), max(x1, x2), min(y1, y2), max(y1, y2)
            x1, x2 = max(0., x1), min(float(width), x2)
            y1, y2 = max(0., y1), min(float(height), y2)
            if x2 - x1 < 1 or y2 - y1 < 1:
                raise DemoError(f'the box {box!r} is empty inside the {width} x {height} image')
            kwargs['boxes'] = [(x1, y1, x2, y2)] * count
        return kwargs

    def segment(self, image: Optional[str] = None, example: Optional[str] = None,
                texts: Sequence[str] = (), semantic: bool = False,
                points: Optional[list] = None, box: Optional[list] = None) -> dict:
        """One request: ``dict(width, height, results, image_encoded, seconds, cache)``, a
        result per expression ``dict(text, caption, score, area, mask, overlay)`` (PNG data
        URLs); a model with a no-target head adds ``no_target`` (bool: the expression names
        nothing, its mask is empty) and ``no_target_score`` (its probability)."""
        started = time.perf_counter()
        array = self.load(image, example)
        height, width = array.shape[:2]
        if not texts and (points or box) and (self.accepts['points'] or self.accepts['boxes']):
            expressions = [None]  # SAM prompted by the points / box alone
        else:
            expressions = clean_texts(texts, semantic)
        kwargs = self.prompt_kwargs(points, box, width, height, len(expressions))
        with self._lock:
            runs = self.cache.encoder_runs
            try:
                out = self.inferencer(array, expressions, return_vis=True, **kwargs)
            except (ValueError, TypeError, FileNotFoundError) as error:
                # the inferencer names bad inputs (empty expression, bad prompt, ...)
                raise DemoError(str(error)) from error
            encoded = self.cache.encoder_runs > runs
            self.requests += 1
        pred, drawings = out['predictions'][0], out['visualization'][0]
        results = []
        for i, (mask, score, drawing) in enumerate(zip(pred['masks'], pred['scores'],
                                                       drawings)):
            text = pred['texts'][i]
            extras = []
            if pred.get('points') and pred['points'][i]:
                extras.append(f'{len(pred["points"][i])} point(s)')
            if pred.get('boxes') and pred['boxes'][i]:
                extras.append('a box')
            caption = ' + '.join(([text] if text is not None else []) + extras)
            result = dict(text=text, caption=caption, score=float(score),
                          area=int(mask.sum()), mask=png_data_url(mask.astype(np.uint8) * 255),
                          overlay=png_data_url(np.ascontiguousarray(drawing[..., ::-1])))
            if 'no_target' in pred:  # a model with a no-target head; otherwise as before
                result.update(no_target=bool(pred['no_target'][i]),
                              no_target_score=float(pred['no_target_scores'][i]))
            results.append(result)
        return dict(width=int(width), height=int(height), results=results,
                    image_encoded=bool(encoded), seconds=time.perf_counter() - started,
                    cache=self.cache.stats())
