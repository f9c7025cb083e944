"""What the inferencer reads: config names, checkpoints, images (paths or arrays)."""
import difflib
import os
import os.path as osp
from glob import glob
from typing import Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmengine.config import ConfigDict

from mmevf.models.utils.evf_checkpoint import convert_evf_sam_state_dict, read_evf_sam_folder
from mmevf.models.utils.weights import load_state_dict_checked, read_state_dict

ImageType = Union[str, np.ndarray]
TextsType = Union[str, Sequence[str], Sequence[Sequence[str]]]
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
CONFIG_ROOT = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs')
DTYPES = {'float32': torch.float32, 'fp32': torch.float32, 'bfloat16': torch.bfloat16,
          'bf16': torch.bfloat16, 'float16': torch.float16, 'fp16': torch.float16}


def resolve_config(model: str) -> str:
    """A config file path, or a config name (``'evf-tiny_synthref'``) found under configs/."""
    if osp.isfile(model):
        return model
    name = osp.basename(model)[:-3] if model.endswith('.py') else model
    found = sorted(glob(osp.join(CONFIG_ROOT, '**', f'{name}.py'), recursive=True))
    found = [path for path in found if '_base_' not in path.split(os.sep)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ValueError(f'config name {model!r} is ambiguous: {found}')
    known = [osp.basename(p)[:-3] for p in glob(osp.join(CONFIG_ROOT, '**', '*.py'),
                                                recursive=True)]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f'; did you mean {", ".join(close)}?' if close else ''
    raise FileNotFoundError(f'config {model!r} is neither a file nor a config name under '
                            f'{CONFIG_ROOT}{hint}')


def load_weights(model: torch.nn.Module, weights: str, config: str = 'the config') -> None:
    """Fill ``model`` from an mmevf / MMEngine checkpoint, a plain state dict (``.pth``,
    ``.safetensors``) or an official EVF-SAM folder; a mismatch names every missing,
    unexpected and mis-shaped key."""
    if osp.isdir(weights):
        state, _ = read_evf_sam_folder(weights)
        state = convert_evf_sam_state_dict(state, source=weights)
    else:
        state = read_state_dict(weights)
    if state and all(k.startswith('module.') for k in state):  # saved from a wrapped model
        state = {k[len('module.'):]: v for k, v in state.items()}
    try:
        load_state_dict_checked(model, state, source=weights)
    except ValueError as err:
        raise ValueError(f'checkpoint does not match {config}: {err}') from None


class LoadInferenceImage:
    """First pipeline step: ``dict(img=path or array, text=[...])`` -> the results of
    ``LoadImageFromFile`` (``img`` (H, W, 3) uint8 BGR, ``img_path``, ``ori_shape``, ...).

    Arrays are taken as BGR (OpenCV's order); (H, W) / (H, W, 1) grey and (H, W, 4) BGRA are
    converted. Unreadable inputs raise errors that name them."""

    def __call__(self, item: dict) -> dict:
        results = dict(item)  # the caller's item keeps its input for drawing
        image, name = results['img'], results['name']
        if isinstance(image, str):
            try:
                data = np.fromfile(image, np.uint8)
            except OSError as err:
                raise ValueError(f'cannot read image {image}: {err}') from None
            image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
            if image is None:
                raise ValueError(f'cannot decode image {name}: not an image file, or corrupt')
        else:
            image = check_array(image, name)
        results.update(img=image, ori_shape=image.shape[:2], img_shape=image.shape[:2])
        return results


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
