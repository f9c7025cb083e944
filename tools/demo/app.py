"""Browser demo of text-prompted segmentation: upload (or pick) an image, type expressions, see
each mask over the image with its score.

``python tools/demo/app.py [--config CONFIG] [--weights CKPT] [--tokenizer DIR] [--port 7860]``

Defaults: the embedded tiny model (``configs/evf_sam/evf-tiny_synthref.py``) and the checkpoint
its ``make demo`` run left (``work_dirs/evf-tiny_synthref/last_checkpoint``). Run from the
repository root (the config's tokenizer path is relative to it), then open the printed address.

A FastAPI app serving a static page (``tools/demo/static/``: plain HTML / JS / CSS, nothing
fetched from elsewhere, so it works offline) and a JSON API:

- ``GET /api/info``: the model, whether points / boxes can be given, the example images;
- ``POST /api/image`` ``{image}``: checks that an upload decodes, returns its size;
- ``POST /api/segment`` ``{image | example, texts, semantic, points, box}``: one mask (PNG,
  0 / 255, as a data URL), one drawing of it over the image and one score per expression;
- ``GET /api/health``.

Inference is :class:`mmevf.apis.TextSegInferencer`. SAM's image encoder runs once per image:
:class:`EmbeddingCache` memoises ``model.image_embeddings`` (the one place a SAM-based mmevf
segmentor runs it) per padded input image, so that a user trying expressions, points or boxes
on one image pays for the encoder once.
"""
import argparse
import base64
import binascii
import hashlib
import inspect
import logging
import os
import os.path as osp
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = Path(__file__).resolve().parent / 'static'
DEFAULT_CONFIG = 'configs/evf_sam/evf-tiny_synthref.py'
DEFAULT_EXAMPLES = 'data/synthref/images'
SEMANTIC_PREFIX = '[semantic] '
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # decoded file size
MAX_PIXELS = 40_000_000
MAX_EXPRESSIONS = 16
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')

logger = logging.getLogger('mmevf.demo')


class DemoError(Exception):
    """A request the demo cannot serve; ``str(error)`` is shown to the user as it is."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------- embedding cache
class EmbeddingCache:
    """An LRU memo of ``model.image_embeddings``, installed on the model instance.

    Every SAM-based mmevf segmentor gets its SAM image embeddings from
    ``self.image_embeddings(inputs)`` (``BaseSAMSegmentor``: ``inputs['img']``, the (B, 3, S, S)
    normalised and padded batch -> (B, C, h, w)). An instance attribute of that name shadows
    the method, so the model code is untouched. Each image of a batch is keyed by the SHA-256
    of its padded input tensor (bytes, shape, dtype, device): the same upload, the same example
    or the same pixels sent again hit the cache whatever else the request changes (expressions,
    ``[semantic]``, points, boxes), and only the images not cached go through the encoder, in
    one batch. ``size`` entries are kept (one entry of the tiny model: 64 KiB; of SAM-H:
    4 MiB); ``size=0`` disables the cache. Inputs it does not recognise, and batches that
    carry their embeddings (``img_embed``, read from an embedding cache on disk), pass
    through. The weights are taken as fixed while it is installed (the demo never changes
    them).

    ``misses`` counts the images encoded, ``hits`` those served without the encoder;
    ``encoder_runs`` counts the calls of the wrapped method.
    """

    def __init__(self, model: Any, size: int = 8) -> None:
        if 'image_embeddings' in vars(model):
            raise ValueError('model.image_embeddings is already wrapped')
        self.model = model
        self.size = int(size)
        self.entries: 'OrderedDict[str, Any]' = OrderedDict()
        self.hits = self.misses = self.encoder_runs = 0
        self._lock = threading.Lock()
        self._compute = model.image_embeddings  # the bound method of the class
        model.image_embeddings = self

    def remove(self) -> None:
        """Give the model its own ``image_embeddings`` back."""
        if vars(self.model).get('image_embeddings') is self:
            del self.model.image_embeddings

    @staticmethod
    def key(image: Any) -> str:
        """SHA-256 of one padded input image (a (3, S, S) tensor) with its shape and dtype."""
        import torch
        data = image.detach().cpu().contiguous()
        digest = hashlib.sha256(f'{tuple(data.shape)}|{data.dtype}|{image.device}|'.encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    def __call__(self, inputs: Any, *args, **kwargs):
        import torch
        images = inputs.get('img') if isinstance(inputs, dict) else None
        if (self.size <= 0 or args or kwargs or not torch.is_tensor(images)
                or images.dim() != 4 or 'img_embed' in inputs):  # embeddings given: no encoder
            self.encoder_runs += 1
            return self._compute(inputs, *args, **kwargs)
        keys = [self.key(image) for image in images]
        with self._lock:
            found = {k: self.entries[k] for k in keys if k in self.entries}
            for k in found:
                self.entries.move_to_end(k)
        # the first occurrence of each image not cached: a batch holding one twice encodes it once
        first: List[int] = []
        for i, k in enumerate(keys):
            if k not in found and all(keys[j] != k for j in first):
                first.append(i)
        self.hits += len(keys) - len(first)
        self.misses += len(first)
        if first:
            computed = self._compute(dict(inputs, img=images[first]))
            self.encoder_runs += 1
            with self._lock:
                for j, i in enumerate(first):
                    found[keys[i]] = computed[j:j + 1].detach()
                    self.entries[keys[i]] = found[keys[i]]
                    self.entries.move_to_end(keys[i])
                while len(self.entries) > self.size:
                    self.entries.popitem(last=False)
        return torch.cat([found[k] for k in keys])

    def stats(self) -> dict:
        return dict(size=self.size, entries=len(self.entries), hits=self.hits,
                    misses=self.misses, encoder_runs=self.encoder_runs)


# ---------------------------------------------------------------------- inputs
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


def list_examples(folder: Optional[str], limit: int = 6) -> Dict[str, Path]:
    """Up to ``limit`` image files of ``folder`` (sorted), by file name; none if it is
    missing."""
    if not folder or not osp.isdir(folder):
        return {}
    files = sorted(p for p in Path(folder).iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return {p.name: p for p in files[:limit]}


# ---------------------------------------------------------------------- the service
class DemoService:
    """What the page's requests do, without HTTP: decode, check, run the inferencer (one call
    per request, all expressions of the image in it), encode the results."""

    def __init__(self, inferencer: Any, examples: Optional[Dict[str, Path]] = None,
                 cache_size: int = 8, model_name: str = '', weights: str = '') -> None:
        self.inferencer = inferencer
        self.examples = dict(examples or {})
        self.cache = EmbeddingCache(inferencer.model, cache_size)
        self.model_name = model_name
        self.weights = weights
        params = inspect.signature(inferencer.__call__).parameters
        # another inferencer version may take SAM's points / boxes beside the expressions
        self.accepts = {name: name in params for name in ('points', 'boxes')}
        self._lock = threading.Lock()  # one inference at a time: the model is shared
        self.requests = 0

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
            results.append(dict(text=text, caption=caption, score=float(score),
                                area=int(mask.sum()),
                                mask=png_data_url(mask.astype(np.uint8) * 255),
                                overlay=png_data_url(np.ascontiguousarray(drawing[..., ::-1]))))
        return dict(width=int(width), height=int(height), results=results,
                    image_encoded=bool(encoded), seconds=time.perf_counter() - started,
                    cache=self.cache.stats())


# ---------------------------------------------------------------------- HTTP
def create_app(service: DemoService):
    """The FastAPI app: the static page and the JSON API over ``service``."""
    from fastapi import FastAPI
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel

    class ImageRequest(BaseModel):
        image: Optional[str] = None

    class SegmentRequest(BaseModel):
        image: Optional[str] = None
        example: Optional[str] = None
        texts: List[Any] = []
        semantic: bool = False
        points: Optional[List[Any]] = None
        box: Optional[List[Any]] = None

    app = FastAPI(title='mmevf demo', docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service

    def error_response(error: Exception) -> JSONResponse:
        if isinstance(error, DemoError):
            return JSONResponse({'detail': str(error)}, status_code=error.status)
        logger.exception('request failed')
        return JSONResponse({'detail': f'internal error ({type(error).__name__}: {error}); '
                                       f'the server is still running'}, status_code=500)

    @app.get('/', include_in_schema=False)
    def index():
        return FileResponse(STATIC_DIR / 'index.html', media_type='text/html')

    @app.get('/api/health')
    def health():
        return {'status': 'ok', 'requests': service.requests}

    @app.get('/api/info')
    def info():
        return service.info()

    @app.get('/api/examples/{name}')
    def example(name: str):
        try:
            return FileResponse(service.example_path(name))
        except DemoError as error:
            return error_response(error)

    @app.post('/api/image')
    def check_image(request: ImageRequest):
        try:
            return service.check(request.image)
        except Exception as error:  # noqa: BLE001 -- every failure is answered, the server lives
            return error_response(error)

    @app.post('/api/segment')
    def segment(request: SegmentRequest):
        try:
            return service.segment(request.image, request.example, request.texts,
                                   request.semantic, request.points, request.box)
        except Exception as error:  # noqa: BLE001
            return error_response(error)

    app.mount('/static', StaticFiles(directory=STATIC_DIR), name='static')
    return app


# ---------------------------------------------------------------------- command line
def default_weights(config: str) -> str:
    """The checkpoint ``make demo`` left for ``config``: the file named by
    ``work_dirs/<config name>/last_checkpoint``; a clear error if there is none."""
    name = osp.splitext(osp.basename(config))[0]
    pointer = ROOT / 'work_dirs' / name / 'last_checkpoint'
    if not pointer.is_file():
        raise SystemExit(f'error: no checkpoint for {name}: {pointer} does not exist. Run '
                         f'`make demo` first (it trains the tiny model), or pass --weights CKPT.')
    weights = pointer.read_text().strip()
    if not osp.isfile(weights):
        raise SystemExit(f'error: {pointer} names {weights}, which does not exist. Run '
                         f'`make demo` again, or pass --weights CKPT.')
    return weights


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Browser demo: text (and point / box) prompted segmentation')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help=f'config file or name (default: {DEFAULT_CONFIG})')
    parser.add_argument('--weights', help='checkpoint (default: the one `make demo` trained, '
                        'named by work_dirs/<config name>/last_checkpoint)')
    parser.add_argument('--tokenizer', help="tokenizer folder replacing the config's")
    parser.add_argument('--device', default=None, help='cpu, cuda, ... (default: auto)')
    parser.add_argument('--bf16', action='store_true', help='bfloat16 weights and inputs')
    parser.add_argument('--host', default='127.0.0.1', help='address to listen on')
    parser.add_argument('--port', type=int, default=7860, help='port (default: 7860)')
    parser.add_argument('--examples', default=DEFAULT_EXAMPLES,
                        help=f'folder of example images (default: {DEFAULT_EXAMPLES}, if '
                        f'present)')
    parser.add_argument('--num-examples', type=int, default=6, help='examples shown')
    parser.add_argument('--cache-size', type=int, default=8,
                        help='image embeddings kept (LRU; 0 disables the cache)')
    return parser.parse_args(argv)


def build_service(args: argparse.Namespace) -> DemoService:
    from mmevf.apis import TextSegInferencer
    weights = args.weights or default_weights(args.config)
    if not osp.exists(weights):
        raise SystemExit(f'error: checkpoint {weights} does not exist')
    inferencer = TextSegInferencer(args.config, weights=weights, tokenizer=args.tokenizer,
                                   device=args.device, bf16=args.bf16, show_progress=False)
    return DemoService(inferencer, list_examples(args.examples, args.num_examples),
                       cache_size=args.cache_size,
                       model_name=osp.splitext(osp.basename(args.config))[0], weights=weights)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='[demo] %(message)s')
    if args.weights is None:
        default_weights(args.config)  # fail before the slow imports
    import uvicorn
    service = build_service(args)
    app = create_app(service)
    print(f'[demo] {service.model_name} ({service.weights}); points: '
          f'{service.accepts["points"]}, boxes: {service.accepts["boxes"]}, '
          f'{len(service.examples)} examples', flush=True)
    print(f'[demo] open http://{args.host}:{args.port}/ (Ctrl+C stops)', flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level='warning')


if __name__ == '__main__':
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
