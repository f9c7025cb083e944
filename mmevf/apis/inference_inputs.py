"""What the inferencer reads: config names, image arrays and point / box prompts (files are
loaded by mmdet's ``InferencerLoader`` in the pipeline, checkpoints by
:func:`mmevf.checkpoint.load_weights`)."""
import difflib
import os
import os.path as osp
from glob import glob
from typing import Any, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmengine.config import ConfigDict

ImageType = Union[str, np.ndarray]
# An expression is a str, or None for "no text" (points / box only).
TextsType = Union[Optional[str], Sequence[Optional[str]], Sequence[Sequence[Optional[str]]]]
# One expression's points: (x, y) or (x, y, label) each, label 1 foreground (default) or 0
# background; one expression's box: (x1, y1, x2, y2). Both in original-image pixels.
PointsType = Optional[Sequence[Sequence[float]]]
BoxType = Optional[Sequence[float]]
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))  # .../mmevf


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


# ---------------------------------------------------------------------- point / box prompts
def _numbers(value: Any, where: str, form: str) -> np.ndarray:
    """A flat sequence of finite numbers as float64, or a ValueError showing ``form``."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f'{where}: expected {form}, got {value!r}')
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f'{where}: expected {form}, got {value!r}') from None
    if array.ndim != 1:
        raise ValueError(f'{where}: expected {form}, got {value!r}')
    if not np.isfinite(array).all():
        raise ValueError(f'{where}: {value!r} is not finite')
    return array


def check_points(points: PointsType, where: str) -> Optional[np.ndarray]:
    """One expression's points -> (P, 3) float64 rows (x, y, label), ``None`` for none.

    Each point is (x, y) (a foreground point) or (x, y, label) with label 1 (foreground) or 0
    (background); an empty list means no points. ``where`` names the expression in errors.
    """
    if points is None:
        return None
    if isinstance(points, (str, bytes)) or not isinstance(points, (list, tuple, np.ndarray)):
        raise ValueError(f'{where}: points must be a list of (x, y) or (x, y, label), got '
                         f'{points!r}')
    rows = []
    for k, point in enumerate(points):
        row = _numbers(point, f'{where}, point #{k}',
                       '(x, y) or (x, y, label) (one point is written [(x, y)])')
        if len(row) not in (2, 3):
            raise ValueError(f'{where}, point #{k}: expected (x, y) or (x, y, label), got '
                             f'{len(row)} numbers')
        if len(row) == 3 and row[2] not in (0, 1):
            raise ValueError(f'{where}, point #{k}: label must be 1 (foreground) or 0 '
                             f'(background), got {row[2]:g}')
        rows.append(row if len(row) == 3 else np.append(row, 1.0))
    return np.stack(rows) if rows else None


def check_box(box: BoxType, where: str) -> Optional[np.ndarray]:
    """One expression's box -> (4,) float64 (x1, y1, x2, y2) with x1 < x2, y1 < y2; or None."""
    if box is None:
        return None
    array = _numbers(box, f'{where}, box', '(x1, y1, x2, y2)')
    if len(array) != 4:
        raise ValueError(f'{where}, box: expected (x1, y1, x2, y2), got {len(array)} numbers')
    if not (array[0] < array[2] and array[1] < array[3]):
        raise ValueError(f'{where}, box {tuple(array.tolist())}: expected x1 < x2 and y1 < y2')
    return array


def check_inside(points: Optional[np.ndarray], box: Optional[np.ndarray],
                 shape: Tuple[int, int], where: str) -> None:
    """A ValueError if a point or a box corner lies outside the (H, W) image: 0 <= x <= W,
    0 <= y <= H (original pixels)."""
    height, width = shape[:2]
    corners = [] if points is None else [(f'point #{k}', p[:2]) for k, p in enumerate(points)]
    if box is not None:
        corners += [('box', box[:2]), ('box', box[2:])]
    for label, (x, y) in corners:
        if not (0 <= x <= width and 0 <= y <= height):
            raise ValueError(f'{where}, {label}: ({x:g}, {y:g}) lies outside the '
                             f'{width}x{height} image')
