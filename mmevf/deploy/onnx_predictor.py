"""EVF-SAM exported to ONNX (``tools/deployment/export_onnx.py``), run by ONNX Runtime.

Standalone: this file imports only ``onnxruntime``, ``numpy``, Pillow, and optionally OpenCV
(to decode images exactly as mmevf does) and the tokenizer library (``sentencepiece`` for
XLM-R, else ``tokenizers``); nothing from mmevf or torch. The exporter copies it into the
export folder as ``predict.py``::

    python DIR/predict.py IMAGE "expression" ... [--point X,Y[,LABEL]] [--box X1,Y1,X2,Y2]
        --out-dir OUT [--int8] [--threads N]

which writes ``OUT/masks/{stem}_{i}.png`` (0 / 255) and ``OUT/preds/{stem}.json`` as
``tools/infer.py`` does. In Python: ``OnnxEVFSAM(DIR).predict(image, texts, points, boxes)``.

The folder holds ``deploy.json`` (sizes, normalisation, resize rule, threshold, tokenizer
settings, the graphs' signatures), the tokenizer folder and three graphs: the image encoder
runs once per image, the text encoder once per image for all its expressions, the mask
decoder once per prompt layout (text or not, point count, box or not), as mmevf's PyTorch
model runs them. Pre- and post-processing reproduce the PyTorch pipeline (``SAMResize``,
``SAMDataPreprocessor``, ``TokenizeText``, SAM's coordinate mapping and mask threshold); the
upsampling to the original size is inside the decoder graph.

ONNX Runtime's threads: ``threads`` (``--threads``), else ``OMP_NUM_THREADS`` when set, else
ONNX Runtime's default (one per physical core); idle threads sleep instead of spinning.
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import onnxruntime as ort
from PIL import Image

try:  # decodes as mmevf's loader (mmcv, cv2.imdecode); Pillow otherwise
    import cv2
except ImportError:  # pragma: no cover - depends on the deployment
    cv2 = None

DEPLOY_FILE = 'deploy.json'
FORMAT = 'mmevf-onnx'
FORMAT_VERSION = 1
GRAPHS = ('image_encoder', 'text_encoder', 'mask_decoder')
INT8_GRAPHS = ('image_encoder', 'text_encoder')  # the decoder stays fp32
PRECISIONS = ('fp32', 'int8')
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
# graph metadata (onnx metadata_props) written by the exporter
META_GRAPH, META_FINGERPRINT, META_CONFIG = 'mmevf.graph', 'mmevf.fingerprint', 'mmevf.config'
# the mask decoder's point labels (segment_anything's ONNX encoding)
PAD_LABEL, BOX_LABELS = -1.0, (2.0, 3.0)
CUBIC_A = -0.75  # torch's bicubic kernel

ImageInput = Union[str, np.ndarray]


class DeployFolderError(ValueError):
    """An export folder that cannot be used as it is (the message names the file)."""


# ---------------------------------------------------------------------- the folder
def graph_file(name: str, precision: str = 'fp32') -> str:
    """``image_encoder`` -> ``image_encoder.onnx`` (``image_encoder_int8.onnx`` for int8)."""
    return f'{name}_int8.onnx' if precision == 'int8' and name in INT8_GRAPHS else f'{name}.onnx'


def graph_key(name: str, precision: str = 'fp32') -> str:
    """The graph's entry in ``deploy.json``'s ``graphs``."""
    return graph_file(name, precision)[:-len('.onnx')]


def read_deploy(model_dir: str) -> dict:
    """``deploy.json`` of an export folder, checked for what this predictor needs."""
    if not osp.isdir(model_dir):
        raise FileNotFoundError(f'export folder {model_dir} does not exist')
    path = osp.join(model_dir, DEPLOY_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} is missing: {model_dir} is not a folder written by '
                                f'tools/deployment/export_onnx.py')
    try:
        with open(path) as f:
            deploy = json.load(f)
    except (OSError, ValueError) as err:
        raise DeployFolderError(f'{path}: not a readable JSON file ({err})') from None
    if not isinstance(deploy, dict) or deploy.get('format') != FORMAT:
        raise DeployFolderError(f'{path}: not an mmevf ONNX export (format {FORMAT!r})')
    if deploy.get('format_version') != FORMAT_VERSION:
        raise DeployFolderError(f'{path}: format version {deploy.get("format_version")}, this '
                                f'predictor reads version {FORMAT_VERSION}; export again')
    missing = [key for key in ('image', 'tokenizer', 'graphs', 'mask_threshold', 'model')
               if key not in deploy]
    if missing:
        raise DeployFolderError(f'{path}: missing {missing}')
    return deploy


def describe_dims(dims: Sequence) -> str:
    return 'x'.join(str(d) for d in dims)


def check_session(session: 'ort.InferenceSession', path: str, expected: dict,
                  config: str) -> None:
    """A graph loaded from ``path`` against its ``deploy.json`` entry: the exporter's
    metadata (which model it came from) and its inputs / outputs (names, element types, fixed
    dims). A ``DeployFolderError`` naming the file when they disagree."""
    meta = session.get_modelmeta().custom_metadata_map
    found = {kind: {v.name: v for v in getter()} for kind, getter in (
        ('inputs', session.get_inputs), ('outputs', session.get_outputs))}
    for kind in ('inputs', 'outputs'):
        want = expected[kind]
        if list(found[kind]) != list(want):
            raise DeployFolderError(f'{path}: {kind} {list(found[kind])}, deploy.json expects '
                                    f'{list(want)}: a graph from another model or export')
        for name, spec in want.items():
            dims = found[kind][name].shape
            fixed = [(a, b) for a, b in zip(dims, spec['shape'])
                     if isinstance(a, int) or isinstance(b, int)]
            if len(dims) != len(spec['shape']) or any(a != b for a, b in fixed):
                raise DeployFolderError(
                    f'{path}: {kind[:-1]} {name!r} is {describe_dims(dims)}, deploy.json '
                    f'expects {describe_dims(spec["shape"])}: a graph from another model size '
                    f'(exported from {meta.get(META_CONFIG, "an unknown config")}, this '
                    f'folder is {config})')
    if meta.get(META_FINGERPRINT) != expected['fingerprint']:
        what = 'no mmevf fingerprint' if META_FINGERPRINT not in meta else \
            f'fingerprint {meta[META_FINGERPRINT][:12]}'
        raise DeployFolderError(
            f'{path}: {what}, deploy.json expects {expected["fingerprint"][:12]}: a graph from '
            f'another model size or export (exported from '
            f'{meta.get(META_CONFIG, "an unknown config")}, this folder is {config})')


# ---------------------------------------------------------------------- images
def load_image(path: str) -> np.ndarray:
    """An image file -> (H, W, 3) uint8 BGR, decoded as mmevf's loader decodes it (OpenCV's
    ``imdecode``, colour, EXIF orientation applied); with Pillow where OpenCV is missing."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'image {path} does not exist')
    image = None
    if cv2 is not None:
        image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    else:  # pragma: no cover - depends on the deployment
        try:
            from PIL import ImageOps
            with Image.open(path) as pil:
                image = np.asarray(ImageOps.exif_transpose(pil).convert('RGB'))[..., ::-1]
        except (OSError, ValueError):
            image = None
    if image is None:
        raise ValueError(f'cannot decode image {path}: not an image file, or corrupt')
    return np.ascontiguousarray(image)


def check_image(image: np.ndarray, name: str = 'image') -> np.ndarray:
    """An array as (H, W, 3) uint8 BGR (grey and BGRA converted)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f'{name}: expected a uint8 image array')
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(f'{name}: expected an (H, W, 3) BGR image array, got shape '
                         f'{tuple(image.shape)}')
    return np.ascontiguousarray(image)


def preprocess_shape(height: int, width: int, long_side: int) -> Tuple[int, int]:
    """The size SAM resizes an (H, W) image to: longest side ``long_side``, the other rounded
    half up (``ResizeLongestSide.get_preprocess_shape``, in float64)."""
    scale = long_side * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_longest_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) uint8 with max(h, w) = ``long_side``: Pillow's
    antialiased bilinear filter, as segment_anything's ``ResizeLongestSide.apply_image``
    (``SAMResize``; the channel order is kept)."""
    height, width = preprocess_shape(image.shape[0], image.shape[1], long_side)
    if (height, width) == image.shape[:2]:
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def normalise(image: np.ndarray, mean: Sequence[float], std: Sequence[float],
              bgr_to_rgb: bool) -> np.ndarray:
    """(h, w, 3) uint8 -> (3, h, w) float32 ``(x - mean) / std`` (``SAMDataPreprocessor``)."""
    if bgr_to_rgb:
        image = image[..., ::-1]
    chw = image.transpose(2, 0, 1).astype(np.float32)
    mean = np.asarray(mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(std, np.float32).reshape(-1, 1, 1)
    return (chw - mean) / std


def cubic_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) float32 weights of torch's bicubic resampling along one axis
    (``F.interpolate(mode='bicubic', align_corners=False)`` without antialias: the Keys kernel
    with a = -0.75 on 4 taps, source index ``scale * (i + 0.5) - 0.5``, borders replicated),
    in torch's float32 arithmetic."""
    scale = np.float32(in_size) / np.float32(out_size)
    source = scale * (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
    first = np.floor(source)
    t = (source - first).astype(np.float32)
    a = np.float32(CUBIC_A)

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)
    taps = np.clip(first[:, None].astype(np.int64) + np.arange(-1, 3), 0, in_size - 1)
    matrix = np.zeros((out_size, in_size), np.float32)
    np.add.at(matrix, (np.repeat(np.arange(out_size), 4), taps.ravel()), weights.ravel())
    return matrix


def multimodal_view(image: np.ndarray, size: int, mean: Sequence[float],
                    std: Sequence[float]) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> (1, 3, size, size) float32: the original RGB image in [0, 1]
    stretched to a square by torch's bicubic resampling (no antialias, no clamping), then
    ``(x - mean) / std`` (``SAMResize.mm_image`` + ``SAMDataPreprocessor.mm_images``)."""
    rgb = image[..., ::-1].transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    rows = cubic_matrix(image.shape[0], size)
    cols = cubic_matrix(image.shape[1], size)
    resized = np.stack([rows @ channel @ cols.T for channel in rgb])
    mean = np.asarray(mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(std, np.float32).reshape(-1, 1, 1)
    return ((resized - mean) / std)[None].astype(np.float32)


def to_input_frame(xy: np.ndarray, ori_shape: Sequence[int],
                   img_shape: Sequence[int]) -> np.ndarray:
    """(..., 2) xy in original pixels -> float32 xy in the resized image, in float64 before the
    cast (segment_anything's ``ResizeLongestSide.apply_coords``)."""
    (old_h, old_w), (new_h, new_w) = ori_shape[:2], img_shape[:2]
    scale = np.array([new_w / old_w, new_h / old_h], np.float64)
    return (np.asarray(xy, np.float64) * scale).astype(np.float32)


# ---------------------------------------------------------------------- text
class Tokenizer:
    """The export's tokenizer: token ids as mmevf's ``TokenizeText`` makes them.

    ``kind`` ``'xlmr-sentencepiece'`` (BEiT-3's XLM-R): ``[<s>, piece ids + offset, </s>]``,
    an unknown piece (sentencepiece id 0) as ``<unk>``; ``'tokenizers-json'``: the
    transformers tokenizer's own ``tokenizer.json`` through the ``tokenizers`` library.
    Texts longer than ``max_length`` (special tokens included) keep their first pieces.
    """

    def __init__(self, folder: str, settings: dict) -> None:
        self.kind = settings['kind']
        self.max_length = settings.get('max_length')
        self.pad_id = int(settings['pad_id'])
        if not osp.isdir(folder):
            raise FileNotFoundError(f'tokenizer folder {folder} is missing')
        if self.kind == 'xlmr-sentencepiece':
            import sentencepiece
            path = osp.join(folder, settings['model_file'])
            if not osp.isfile(path):
                raise FileNotFoundError(f'{path} is missing (the tokenizer of the export)')
            self.model = sentencepiece.SentencePieceProcessor(model_file=path)
            self.bos, self.eos = int(settings['bos_id']), int(settings['eos_id'])
            self.unk, self.offset = int(settings['unk_id']), int(settings['offset'])
        elif self.kind == 'tokenizers-json':
            from tokenizers import Tokenizer as JsonTokenizer
            path = osp.join(folder, 'tokenizer.json')
            if not osp.isfile(path):
                raise FileNotFoundError(f'{path} is missing (the tokenizer of the export)')
            self.model = JsonTokenizer.from_file(path)
            self.model.no_padding()
            self.model.no_truncation()
            if self.max_length is not None:
                self.model.enable_truncation(int(self.max_length))
        else:
            raise DeployFolderError(f'unknown tokenizer kind {self.kind!r} in {DEPLOY_FILE}')

    def encode(self, text: str) -> List[int]:
        """One expression -> its token ids."""
        if self.kind == 'tokenizers-json':
            return list(self.model.encode(text).ids)
        pieces = [p + self.offset if p else self.unk for p in self.model.encode(text)]
        if self.max_length is not None:
            pieces = pieces[:max(int(self.max_length) - 2, 0)]
        return [self.bos] + pieces + [self.eos]

    def __call__(self, texts: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        """E expressions -> (E, L) int64 ids right-padded with the pad id, and the (E, L) bool
        padding mask (True at padding), L the longest (``SAMDataPreprocessor.text_batch``)."""
        ids = [self.encode(text) for text in texts]
        length = max(len(row) for row in ids)
        batch = np.full((len(ids), length), self.pad_id, np.int64)
        for i, row in enumerate(ids):
            batch[i, :len(row)] = row
        lengths = np.array([len(row) for row in ids])
        return batch, np.arange(length)[None] >= lengths[:, None]


# ---------------------------------------------------------------------- prompts
def check_points(points, where: str) -> Optional[np.ndarray]:
    """One expression's points -> (P, 3) float64 rows (x, y, label); rows of 2 are foreground
    points; ``None`` / empty: none."""
    if points is None:
        return None
    try:  # rows of 2 numbers get label 1
        rows = [[float(v) for v in point] + [1.0] * (len(point) == 2) for point in points]
        array = np.asarray(rows, np.float64)
    except (TypeError, ValueError):
        array = np.zeros((0, 0))
    if not len(rows):
        return None
    if array.ndim != 2 or array.shape[1] != 3 or not np.isfinite(array).all():
        raise ValueError(f'{where}: expected points as rows (x, y) or (x, y, label)')
    if not np.isin(array[:, 2], (0, 1)).all():
        raise ValueError(f'{where}: a point label must be 1 (foreground) or 0 (background)')
    return array


def check_box(box, where: str) -> Optional[np.ndarray]:
    """One expression's box -> (4,) float64 x1, y1, x2, y2 (x1 < x2, y1 < y2), or ``None``."""
    if box is None:
        return None
    array = np.asarray(box, np.float64).reshape(-1)
    if array.shape != (4, ) or not np.isfinite(array).all() or not (
            array[0] < array[2] and array[1] < array[3]):
        raise ValueError(f'{where}: expected a box (x1, y1, x2, y2) with x1 < x2, y1 < y2')
    return array


def decoder_points(points: Optional[np.ndarray], box: Optional[np.ndarray],
                   ori_shape: Sequence[int],
                   img_shape: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """One expression's points / box -> the decoder's (P, 2) float32 coordinates in the input
    frame and (P,) float32 labels, in the order SAM's prompt encoder embeds them: the points,
    then a padding point if there is no box, or the box's two corners (labels 2, 3); (0, 2) and
    (0,) without either."""
    coords, labels = [], []
    if points is not None:
        coords.append(to_input_frame(points[:, :2], ori_shape, img_shape))
        labels.append(points[:, 2].astype(np.float32))
        if box is None:
            coords.append(np.zeros((1, 2), np.float32))
            labels.append(np.array([PAD_LABEL], np.float32))
    if box is not None:
        coords.append(to_input_frame(box.reshape(2, 2), ori_shape, img_shape))
        labels.append(np.array(BOX_LABELS, np.float32))
    if not coords:
        return np.zeros((0, 2), np.float32), np.zeros((0, ), np.float32)
    return np.concatenate(coords), np.concatenate(labels)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function in float32, without overflow for large |x|."""
    x = np.asarray(x, np.float32)
    return (0.5 * (1 + np.tanh(0.5 * x))).astype(np.float32)


# ---------------------------------------------------------------------- the model
class PreparedImage:
    """One image's inputs: the padded SAM input, the multimodal view, and its sizes."""

    def __init__(self, sam_input: np.ndarray, mm_input: Optional[np.ndarray],
                 ori_shape: Tuple[int, int], img_shape: Tuple[int, int]) -> None:
        self.sam_input = sam_input
        self.mm_input = mm_input
        self.ori_shape = ori_shape
        self.img_shape = img_shape


class OnnxEVFSAM:
    """EVF-SAM from an export folder, run by ONNX Runtime.

    Args:
        model_dir: the export folder (``deploy.json``, the graphs, the tokenizer).
        precision: ``'fp32'``, or ``'int8'`` for the dynamically quantised encoders
            (``export_onnx.py --int8``; the decoder is fp32 in both).
        providers: ONNX Runtime execution providers (default: the CPU's).
        threads: intra-op threads of each graph (default: ``OMP_NUM_THREADS`` if set, else
            ONNX Runtime's own default).
        tokenizer: a tokenizer folder replacing the export's copy.
        spinning: let ONNX Runtime's idle threads spin between operators (default off:
            on a CPU shared with other work, spinning made the tiny model 3x slower).

    Raises:
        FileNotFoundError / DeployFolderError naming the file: the folder lacks a graph or
        ``deploy.json``, or a graph comes from another model (size) than ``deploy.json``.
    """

    def __init__(self, model_dir: str, precision: str = 'fp32',
                 providers: Optional[Sequence[str]] = None, threads: Optional[int] = None,
                 tokenizer: Optional[str] = None, spinning: bool = False) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
        self.model_dir = model_dir
        self.precision = precision
        self.deploy = read_deploy(model_dir)
        image = self.deploy['image']
        self.sam_size = int(image['sam_size'])
        self.mm_size = None if image.get('mm_size') is None else int(image['mm_size'])
        self.mask_threshold = float(self.deploy['mask_threshold'])
        self.no_target_threshold = self.deploy.get('no_target_threshold')
        config = self.deploy['model'].get('config', '?')
        paths = {name: osp.join(model_dir, graph_file(name, precision)) for name in GRAPHS}
        for name, path in paths.items():  # every file before the (slow) loading
            key = graph_key(name, precision)
            if key not in self.deploy['graphs']:
                hint = ' (export with --int8)' if precision == 'int8' else ''
                raise DeployFolderError(f'{osp.join(model_dir, DEPLOY_FILE)} lists no graph '
                                        f'{osp.basename(path)}{hint}')
            if not osp.isfile(path):
                hint = '; export with --int8' if precision == 'int8' else ''
                raise FileNotFoundError(f'{path} is missing: the export folder needs '
                                        f'{", ".join(graph_file(g, precision) for g in GRAPHS)}'
                                        f'{hint}')
        options = ort.SessionOptions()
        if threads is None and os.environ.get('OMP_NUM_THREADS', '').isdigit():
            threads = int(os.environ['OMP_NUM_THREADS'])
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        # idle intra-op threads sleep rather than spin: on a CPU shared with other work,
        # spinning made the tiny model 3x slower at 2 threads (107 vs 33 ms an image)
        options.add_session_config_entry('session.intra_op.allow_spinning',
                                         '1' if spinning else '0')
        providers = list(providers or ['CPUExecutionProvider'])
        self.sessions: Dict[str, ort.InferenceSession] = {}
        for name, path in paths.items():
            try:
                session = ort.InferenceSession(path, options, providers=providers)
            except Exception as err:  # ORT raises its own exception types
                raise DeployFolderError(f'{path}: ONNX Runtime cannot load it: {err}') from None
            check_session(session, path, self.deploy['graphs'][graph_key(name, precision)],
                          config)
            self.sessions[name] = session
        self.text_inputs = [i.name for i in self.sessions['text_encoder'].get_inputs()]
        tokenizer_dir = tokenizer or osp.join(model_dir, self.deploy['tokenizer']['folder'])
        self.tokenizer = Tokenizer(tokenizer_dir, self.deploy['tokenizer'])

    # ------------------------------------------------------------------ steps
    def prepare(self, image: ImageInput) -> PreparedImage:
        """An image file or (H, W, 3) uint8 BGR array -> the encoders' inputs."""
        image = load_image(image) if isinstance(image, str) else check_image(image)
        settings = self.deploy['image']
        resized = resize_longest_side(image, self.sam_size)
        normalised = normalise(resized, settings['mean'], settings['std'],
                               settings.get('bgr_to_rgb', True))
        sam_input = np.zeros((1, 3, self.sam_size, self.sam_size), np.float32)
        sam_input[0, :, :resized.shape[0], :resized.shape[1]] = normalised
        mm_input = None if self.mm_size is None else multimodal_view(
            image, self.mm_size, settings['mm_mean'], settings['mm_std'])
        return PreparedImage(sam_input, mm_input, image.shape[:2], resized.shape[:2])

    def encode_image(self, prepared: PreparedImage) -> np.ndarray:
        """(1, C, h, w) SAM image embedding: the expensive step, once per image."""
        return self.sessions['image_encoder'].run(None, {'image': prepared.sam_input})[0]

    def encode_texts(self, prepared: PreparedImage, texts: Sequence[str]) -> np.ndarray:
        """E expressions of one image -> (E, T, C) prompt tokens, in one run."""
        ids, padding = self.tokenizer(texts)
        limit = self.deploy['tokenizer'].get('max_text_length')
        if limit is not None and ids.shape[1] > limit:
            raise ValueError(f'an expression of {ids.shape[1]} tokens is longer than the '
                             f'{limit} the text encoder reads')
        feeds = dict(text_ids=ids, text_padding_mask=padding)
        if 'mm_image' in self.text_inputs:
            feeds['mm_image'] = prepared.mm_input
        return self.sessions['text_encoder'].run(None, feeds)[0]

    def decode(self, embedding: np.ndarray, tokens: np.ndarray, coords: np.ndarray,
               labels: np.ndarray, ori_shape: Sequence[int]) -> List[np.ndarray]:
        """E prompts of one layout -> [(E, H, W) logits at the original size, (E,) IoU
        predictions(, (E,) no-target logits)].

        Args:
            embedding: (1, C, h, w) image embedding.
            tokens: (E, T, C) text prompt tokens (T = 0 without text).
            coords / labels: (E, P, 2) / (E, P) float32 from :func:`decoder_points`.
            ori_shape: the original (H, W).
        """
        outputs = self.sessions['mask_decoder'].run(None, dict(
            image_embeddings=embedding, prompt_tokens=tokens.astype(np.float32),
            point_coords=coords.astype(np.float32), point_labels=labels.astype(np.float32),
            orig_im_size=np.asarray(ori_shape[:2], np.float32)))
        return [outputs[0][:, 0], outputs[1][:, 0]] + list(outputs[2:])

    # ------------------------------------------------------------------ all of it
    def predict(self, image: ImageInput, texts: Sequence[Optional[str]],
                points: Optional[Sequence] = None,
                boxes: Optional[Sequence] = None) -> dict:
        """Segment what each expression of one image describes.

        Args:
            image: an image file, or an (H, W, 3) uint8 BGR array.
            texts: N expressions; ``None`` for one prompted by its points / box alone.
            points: per expression ``None`` or rows (x, y[, label]) in original pixels (label
                1 foreground, the default, or 0 background).
            boxes: per expression ``None`` or (x1, y1, x2, y2) in original pixels.

        Returns:
            ``dict(masks=(N, H, W) bool, logits=(N, H, W) float32, scores=(N,) float32)``, and
            for a model with a no-target head ``no_target`` (N,) bool and
            ``no_target_scores`` (N,) float32 (a no-target expression's mask is empty).
        """
        texts = [texts] if texts is None or isinstance(texts, str) else list(texts)
        count = len(texts)
        points = [None] * count if points is None else list(points)
        boxes = [None] * count if boxes is None else list(boxes)
        if not count or len(points) != count or len(boxes) != count:
            raise ValueError(f'{count} expressions, {len(points)} point entries and '
                             f'{len(boxes)} box entries: give one entry per expression')
        points = [check_points(p, f'expression #{j}') for j, p in enumerate(points)]
        boxes = [check_box(b, f'expression #{j}') for j, b in enumerate(boxes)]
        for j, (text, p, b) in enumerate(zip(texts, points, boxes)):
            if text is None and p is None and b is None:
                raise ValueError(f'expression #{j} has no prompt: no text, point or box')
            if text is not None and (not isinstance(text, str) or not text.strip()):
                raise ValueError(f'expression #{j} is empty (or not a str)')
        prepared = self.prepare(image)
        embedding = self.encode_image(prepared)
        with_text = [j for j, text in enumerate(texts) if text is not None]
        tokens = self.encode_texts(prepared, [texts[j] for j in with_text]) \
            if with_text else None
        text_row = {j: row for row, j in enumerate(with_text)}
        # one decoder run per layout (text or not, point count, box or not), as mmevf decodes
        groups: Dict[Tuple[bool, int, bool], List[int]] = {}
        for j in range(count):
            layout = (texts[j] is not None, 0 if points[j] is None else len(points[j]),
                      boxes[j] is not None)
            groups.setdefault(layout, []).append(j)
        results: List[Optional[List[np.ndarray]]] = [None] * count
        width = self.deploy['prompt']['tokens_per_text']
        dims = self.deploy['prompt']['dim']
        for (has_text, _, _), members in groups.items():
            layout_tokens = tokens[[text_row[j] for j in members]] if has_text else \
                np.zeros((len(members), 0, dims), np.float32)
            assert not has_text or layout_tokens.shape[1] == width
            pairs = [decoder_points(points[j], boxes[j], prepared.ori_shape, prepared.img_shape)
                     for j in members]
            outputs = self.decode(embedding, layout_tokens,
                                  np.stack([c for c, _ in pairs]),
                                  np.stack([lab for _, lab in pairs]), prepared.ori_shape)
            for row, j in enumerate(members):
                results[j] = [output[row] for output in outputs]
        logits = np.stack([r[0] for r in results]).astype(np.float32)
        masks = logits > self.mask_threshold
        out = dict(masks=masks, logits=logits,
                   scores=np.array([r[1] for r in results], np.float32))
        if len(results[0]) > 2:  # a no-target head
            scores = sigmoid(np.array([r[2] for r in results], np.float32))
            no_target = scores > float(self.no_target_threshold)
            out.update(masks=masks & ~no_target[:, None, None], no_target=no_target,
                       no_target_scores=scores)
        return out


# ---------------------------------------------------------------------- the CLI
def _numbers(value: str, counts: Tuple[int, ...], form: str) -> Tuple[float, ...]:
    try:
        numbers = tuple(float(v) for v in value.split(','))
    except ValueError:
        numbers = ()
    if len(numbers) not in counts:
        raise argparse.ArgumentTypeError(f'expected {form}, got {value!r}')
    return numbers


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    here = osp.dirname(osp.abspath(__file__))
    parser = argparse.ArgumentParser(
        description='Segment what expressions describe in an image, with EVF-SAM exported to '
        'ONNX (this folder)')
    parser.add_argument('image', help='image file, or a folder of images')
    parser.add_argument('expressions', nargs='*',
                        help='referring expressions (none: the points / box alone)')
    parser.add_argument('--point', action='append', default=[], metavar='X,Y[,LABEL]',
                        type=lambda v: _numbers(v, (2, 3), 'X,Y or X,Y,LABEL'),
                        help='a point for every expression (original pixels; LABEL 1 '
                        'foreground, the default, 0 background); repeatable')
    parser.add_argument('--box', action='append', default=[], metavar='X1,Y1,X2,Y2',
                        type=lambda v: _numbers(v, (4, ), 'X1,Y1,X2,Y2'),
                        help='a box for every expression (once), or without expressions one '
                        'mask per --box (repeatable)')
    parser.add_argument('--out-dir', required=True, help='folder for the masks and JSON')
    parser.add_argument('--model-dir', default=here,
                        help='the export folder (default: the folder of this script)')
    parser.add_argument('--int8', action='store_true', help='the int8 encoders')
    parser.add_argument('--threads', type=int, help='ONNX Runtime threads per graph')
    args = parser.parse_intermixed_args(argv)
    if not (args.expressions or args.point or args.box):
        parser.error('give an expression, --point or --box')
    if args.expressions and len(args.box) > 1:
        parser.error('an expression takes one box: repeat --box without expressions')
    return args


def main(argv: Optional[List[str]] = None) -> List[dict]:
    """The CLI; a bad folder, image or prompt ends it with the error's message (naming the
    file), exit status 1."""
    args = parse_args(argv)
    try:
        return run(args)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'error: {err}') from None


def run(args: argparse.Namespace) -> List[dict]:
    model = OnnxEVFSAM(args.model_dir, 'int8' if args.int8 else 'fp32', threads=args.threads)
    if osp.isdir(args.image):
        images = sorted(osp.join(args.image, n) for n in os.listdir(args.image)
                        if n.lower().endswith(IMAGE_SUFFIXES))
        if not images:
            raise SystemExit(f'no image in {args.image}')
    else:
        images = [args.image]
    points = [list(args.point)] if args.point else None
    if args.expressions:
        texts = list(args.expressions)
        boxes = [args.box[0] if args.box else None] * len(texts)
    else:
        boxes = list(args.box) or [None]
        texts = [None] * len(boxes)
    points = (points or [None]) * len(texts)
    records = []
    for path in images:
        result = model.predict(path, texts, points, boxes)
        stem = osp.splitext(osp.basename(path))[0]
        os.makedirs(osp.join(args.out_dir, 'masks'), exist_ok=True)
        os.makedirs(osp.join(args.out_dir, 'preds'), exist_ok=True)
        files = []
        height, width = result['masks'].shape[1:]
        print(f'{path} ({width}x{height})')
        for i, mask in enumerate(result['masks']):
            files.append(osp.join('masks', f'{stem}_{i}.png'))
            Image.fromarray(mask.astype(np.uint8) * 255).save(osp.join(args.out_dir, files[-1]))
            label = '' if texts[i] is None else f'"{texts[i]}"'
            if 'no_target' in result and result['no_target'][i]:
                status = f'no target (score {result["no_target_scores"][i]:.2f})'
            else:
                status = f'score {result["scores"][i]:.3f}  {mask.mean() * 100:5.1f}% of the image'
            print(f'  [{i}] {status}  {files[-1]}  {label}')
        record = dict(img_path=path, texts=texts, scores=result['scores'].tolist(),
                      mask_files=files,
                      points=[None if p is None else [list(map(float, q)) for q in p]
                              for p in points],
                      boxes=[None if b is None else list(map(float, b)) for b in boxes])
        if 'no_target' in result:
            record.update(no_target=result['no_target'].tolist(),
                          no_target_scores=result['no_target_scores'].tolist())
        with open(osp.join(args.out_dir, 'preds', f'{stem}.json'), 'w') as f:
            json.dump(record, f, indent=2)
        records.append(record)
    print(f'written to {args.out_dir}')
    return records


if __name__ == '__main__':
    main()
