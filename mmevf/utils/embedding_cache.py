"""The on-disk cache of frozen SAM image embeddings (``tools/cache_embeddings.py`` writes it,
``LoadCachedEmbedding`` reads it, ``BaseSAMSegmentor`` checks it against its encoder).

Layout of a cache folder::

    DIR/cache.json                                   the manifest (below)
    DIR/entries/<h[:2]>/<h>.<variant>.safetensors    one file per image and variant

with ``h`` the SHA-1 of the image path as the dataset gives it (``os.path.normpath``) and
``variant`` ``'none'`` or the flip direction applied before ``SAMResize`` (``'horizontal'``,
``'vertical'``, ``'diagonal'``). One small immutable file per entry: any number of processes
(dataloader workers, ranks, machines on a shared file system) read the cache at once without
locks, a writer never touches a file a reader may hold (writes go to a temporary file renamed
over the target), and an interrupted run resumes by skipping the entries already there.
Entries are safetensors files rather than ``.npy``: they hold bf16 and carry their metadata
in the same file (each entry checks itself), read by memory map and without unpickling.

An entry file holds one tensor, ``embedding`` (C, S / 16, S / 16) in the cache's dtype, and
string metadata: ``format``, ``key``, ``img_path``, ``variant``, ``dtype``, ``img_shape``
(the SAM-resized h, w), ``ori_shape`` and ``pixels`` (:func:`pixel_digest` of the SAM-resized
uint8 image the embedding was computed from).

The manifest (JSON) holds ``format``, ``key``, ``key_parts`` (what the key covers, readable:
see :func:`key_parts`), ``dtype`` (``'float32'``, ``'float16'`` or ``'bfloat16'``: the exact
storage dtype) and ``embedding_shape`` (C, h, w).

**The key** identifies everything that shapes an embedding besides the pixels: the SHA-256 of
the canonical JSON (sorted keys, no spaces) of :func:`key_parts` — the format, SAM's resize
rule, the input side ``img_size``, the normalisation ``mean`` / ``std`` / ``bgr_to_rgb`` of the
data preprocessor, the encoder's structure (every submodule's class and public scalar
attributes) and the SHA-256 of its state dict (every tensor's name, dtype, shape and bytes).
The flip is not in the key: it selects the entry (``variant``), and the entry's ``pixels``
digest pins the exact image.
"""
import hashlib
import json
import os.path as osp
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save as save_safetensors

from .dtypes import torch_dtype_name

FORMAT = 'mmevf-sam-embedding-cache/1'
MANIFEST = 'cache.json'
# SAMResize's SAM branch (segment_anything's ResizeLongestSide, Pillow bilinear): a change of
# that rule must change this name, so that old caches become stale.
RESIZE_RULE = 'ResizeLongestSide/pillow-bilinear'
VARIANTS = ('none', 'horizontal', 'vertical', 'diagonal')
# module attributes that do not shape the embedding: the mode (a cached encoder never trains),
# the frozen flag and the init config (the weights themselves are hashed)
_IGNORED_ATTRIBUTES = frozenset({'training', 'frozen', 'init_cfg'})


class StaleEmbeddingCacheError(ValueError):
    """A cached embedding made with another encoder, input size, normalisation or image."""


# ---------------------------------------------------------------------------------------- key
def _json_value(value: Any) -> Tuple[bool, Any]:
    """(ok, value) with ``value`` JSON-ready if it is a scalar or a container of scalars."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True, value
    if isinstance(value, (tuple, list)):
        items = [_json_value(v) for v in value]
        return all(ok for ok, _ in items), [v for _, v in items]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = {k: _json_value(v) for k, v in value.items()}
        return all(ok for ok, _ in items.values()), {k: v for k, (_, v) in items.items()}
    return False, None


def module_structure(module: torch.nn.Module) -> list:
    """``[[name, class name, {attribute: value}], ...]`` for the module and every submodule:
    its public attributes whose values are scalars or containers of scalars (``window_size``,
    ``num_heads``, a conv's ``stride`` ...), except ``training``, ``frozen`` and ``init_cfg``."""
    structure = []
    for name, sub in module.named_modules():
        attributes = {}
        for attr, value in sorted(vars(sub).items()):
            if attr.startswith('_') or attr in _IGNORED_ATTRIBUTES:
                continue
            ok, value = _json_value(value)
            if ok:
                attributes[attr] = value
        structure.append([name, type(sub).__name__, attributes])
    return structure


def state_dict_digest(module: torch.nn.Module) -> str:
    """SHA-256 over the state dict, in order: per tensor its name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f'{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0'.encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def key_parts(encoder: torch.nn.Module, img_size: int, mean: Sequence[float],
              std: Sequence[float], bgr_to_rgb: bool) -> Dict[str, Any]:
    """Everything besides the pixels that shapes an image embedding (see the module doc)."""
    return dict(format=FORMAT, resize=RESIZE_RULE, img_size=int(img_size),
                mean=[float(m) for m in mean], std=[float(s) for s in std],
                bgr_to_rgb=bool(bgr_to_rgb), encoder=module_structure(encoder),
                weights_sha256=state_dict_digest(encoder))


def cache_key(parts: Dict[str, Any]) -> str:
    """64 hex digits: the SHA-256 of the canonical JSON of ``parts``."""
    text = json.dumps(parts, sort_keys=True, separators=(',', ':'))
    return hashlib.sha256(text.encode()).hexdigest()


def differing_parts(ours: Dict[str, Any], theirs: Dict[str, Any]) -> list:
    """Names of the key parts that differ (``encoder`` for the structure)."""
    return sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))


# ------------------------------------------------------------------------------------ entries
def pixel_digest(img: np.ndarray) -> str:
    """SHA-256 (hex) of a uint8 image's shape and bytes: pins the exact pixels an embedding was
    computed from."""
    img = np.ascontiguousarray(img)
    digest = hashlib.sha256(f'{img.dtype}{img.shape}'.encode())
    digest.update(img.data)
    return digest.hexdigest()


def image_variant(results: dict) -> str:
    """The entry variant of a pipeline result: its flip direction, or ``'none'``."""
    return str(results.get('flip_direction')) if results.get('flip') else 'none'


def entry_path(cache_dir: str, img_path: str, variant: str) -> str:
    """Where the entry of ``img_path`` (flipped as ``variant``) lives in ``cache_dir``."""
    if variant not in VARIANTS:
        raise ValueError(f'unknown cache variant {variant!r}, expected one of {VARIANTS}')
    name = hashlib.sha1(osp.normpath(img_path).encode()).hexdigest()
    return osp.join(cache_dir, 'entries', name[:2], f'{name}.{variant}.safetensors')


def encode_entry(embedding: torch.Tensor, key: str, img_path: str, variant: str,
                 img_shape: Iterable[int], ori_shape: Iterable[int], pixels: str) -> bytes:
    """The bytes of one entry file: ``embedding`` (C, h, w), stored in its own dtype."""
    metadata = dict(format=FORMAT, key=key, img_path=osp.normpath(img_path), variant=variant,
                    dtype=torch_dtype_name(embedding.dtype),
                    img_shape=json.dumps([int(v) for v in img_shape]),
                    ori_shape=json.dumps([int(v) for v in ori_shape]), pixels=pixels)
    return save_safetensors({'embedding': embedding.detach().cpu().contiguous()}, metadata)


def read_entry_metadata(path: str) -> Optional[Dict[str, str]]:
    """An entry's metadata (the file header only), or ``None`` if there is no readable file."""
    if not osp.isfile(path):
        return None
    try:
        with safe_open(path, framework='pt') as f:
            return f.metadata()
    except Exception:  # safetensors' error: not an entry file (a stray file, not a torn one)
        return None


def read_entry(path: str) -> Tuple[torch.Tensor, Dict[str, str]]:
    """(C, h, w) embedding in the stored dtype and the entry's metadata."""
    with safe_open(path, framework='pt') as f:
        return f.get_tensor('embedding'), f.metadata()


# ----------------------------------------------------------------------------------- manifest
def manifest_path(cache_dir: str) -> str:
    """Where the manifest of ``cache_dir`` lives."""
    return osp.join(cache_dir, MANIFEST)


def read_manifest(cache_dir: str) -> Optional[Dict[str, Any]]:
    """The cache's manifest, or ``None`` if ``cache_dir`` holds none."""
    path = manifest_path(cache_dir)
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        manifest = json.load(f)
    if manifest.get('format') != FORMAT:
        raise ValueError(f'{path}: format {manifest.get("format")!r}, expected {FORMAT!r}: '
                         'write the cache again with tools/cache_embeddings.py')
    return manifest


def manifest_text(key: str, parts: Dict[str, Any], dtype: torch.dtype,
                  embedding_shape: Sequence[int]) -> str:
    """The manifest's JSON text (see the module doc)."""
    return json.dumps(dict(format=FORMAT, key=key, dtype=torch_dtype_name(dtype),
                           embedding_shape=[int(v) for v in embedding_shape], key_parts=parts),
                      indent=1, sort_keys=True)
