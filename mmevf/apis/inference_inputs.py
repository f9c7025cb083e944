"""What the inferencer reads: config names and image arrays (files are loaded by mmdet's
``InferencerLoader`` in the pipeline, checkpoints by :func:`mmevf.checkpoint.load_weights`)."""
import difflib
import os
import os.path as osp
from glob import glob
from typing import List, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmengine.config import ConfigDict

ImageType = Union[str, np.ndarray]
TextsType = Union[str, Sequence[str], Sequence[Sequence[str]]]
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))  # .../mmevf
DTYPES = {'float32': torch.float32, 'fp32': torch.float32, 'bfloat16': torch.bfloat16,
          'bf16': torch.bfloat16, 'float16': torch.float16, 'fp16': torch.float16}


def config_root() -> str:
    """The folder config names are looked up in.

    A source checkout (also what an editable install imports) has ``configs/`` next to the
    package; an installed wheel carries its copy as ``mmevf/.mim/configs`` (written by
    setup.py's ``build_py``; mmdet's wheels ship ``mmdet/.mim/configs`` the same way).
    The checkout is recognised by its setup.py too, so a stray ``site-packages/configs`` of
    another distribution is never taken for ours.
    """
    checkout = osp.dirname(PACKAGE_DIR)
    if osp.isfile(osp.join(checkout, 'setup.py')) and osp.isdir(osp.join(checkout, 'configs')):
        return osp.join(checkout, 'configs')
    return osp.join(PACKAGE_DIR, '.mim', 'configs')


def _config_files(root: str) -> List[str]:
    """Every config under ``root`` except the ``_base_`` fragments (not runnable alone)."""
    found = glob(osp.join(root, '**', '*.py'), recursive=True)
    return sorted(p for p in found if '_base_' not in osp.relpath(p, root).split(os.sep))


def resolve_config(model: str) -> str:
    """A config file path, or a config name (``'evf-tiny_synthref'``) found under
    :func:`config_root`."""
    if osp.isfile(model):
        return model
    root = config_root()
    name = osp.basename(model)[:-3] if model.endswith('.py') else model
    configs = _config_files(root)
    found = [path for path in configs if osp.basename(path) == f'{name}.py']
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ValueError(f'config name {model!r} is ambiguous: {found}')
    close = difflib.get_close_matches(name, [osp.basename(p)[:-3] for p in configs], n=3)
    hint = f'; did you mean {", ".join(close)}?' if close else ''
    raise FileNotFoundError(f'config {model!r} is neither a file nor a config name under '
                            f'{root}{hint}')


def check_array(image: np.ndarray, name: str) -> np.ndarray:
    """An image array as (H, W, 3) uint8 BGR, or a ValueError naming it."""
    if image.dtype != np.uint8:
        raise ValueError(f'{name}: expected a uint8 image array, got {image.dtype}')
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(f'{name}: expected an (H, W, 3) BGR image array, got shape '
                         f'{tuple(image.shape)}')
    return np.ascontiguousarray(image)


def dataset_pipeline(cfg: ConfigDict) -> Optional[list]:
    """The pipeline of the test (else val) dataset, looking inside wrappers."""
    for key in ('test_dataloader', 'val_dataloader'):
        dataset = (cfg.get(key) or {}).get('dataset')
        while isinstance(dataset, dict):
            if dataset.get('pipeline'):
                return dataset['pipeline']
            inner = dataset.get('datasets') or [dataset.get('dataset')]
            dataset = inner[0] if inner else None
    return None
