"""What does the model get? A config's referring items after its pipeline, drawn.

``python tools/analysis/browse_dataset.py CONFIG [--split train|val|test] [--out-dir DIR]
[--num-items 16] [--cfg-options ...] [--not-show] [--show-interval 2]``

mmdet's ``tools/analysis_tools/browse_dataset.py`` for mmevf's referring items: the split's
dataset (``<split>_dataloader.dataset``) is built from the config and its first
``--num-items`` items are read through the pipeline (``dataset[i]``, as the runner reads them).
For each item it writes ``<out-dir>/<index>_<image stem>.png``: one panel per expression, in
rows of four, each the SAM-branch image exactly as the image encoder gets it — resized, flipped
if a flip happened, padded to a square by the config's data preprocessor (the padding shows as
the mean colour: zero after normalisation) and un-normalised again — with that expression's
ground-truth mask filled in its own colour, the expression (after the pipeline: a flip swaps
"left" and "right") written in the top-left corner and "no target" in the middle of an
expression annotated as naming nothing; the last cell is the multimodal encoder's small view
(``mm_img``) at its own size, when the pipeline makes one. ``<out-dir>/contact_sheet.jpg``
gathers the first four items (rows) × three of their expressions (different objects first).

A ``MultiSplitDataset`` / ``ConcatDataset`` (the test sets) is browsed dataset by dataset, the
file names prefixed by each one's split (``testA_0_<stem>.png``), or by its position when the
splits do not tell them apart (``1_0_<stem>.png``). Datasets with ``text_mode='random'`` (the
train sets) draw fresh sentences each time an item is read, and random transforms (flips) draw
again too: the pictures show one draw. A ``LoadCachedEmbedding`` step is left out of the
pipelines: it replaces the image with the embedding of that same image.

The files are always written (``--out-dir`` defaults to ``<work_dir>/browse_<split>``). As
mmdet's tool, each item is also shown in a window for ``--show-interval`` seconds unless
``--not-show`` — which is the default on a machine without a display (no ``DISPLAY`` /
``WAYLAND_DISPLAY``).
"""
import argparse
import os
import os.path as osp
import sys
from typing import Any, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmengine.config import Config, ConfigDict, DictAction

from mmevf.engine.hooks.visualization_hook import distinct_objects_first
from mmevf.engine.runner_setup import load_config, register_all_modules
from mmevf.registry import DATASETS, MODELS
from mmevf.visualization import ReferSegVisualizer
from mmevf.visualization.refer_seg_visualizer import EXPRESSION_COLORS, make_contact_sheet

SPLITS = ('train', 'val', 'test')
PANELS_PER_ROW = 4  # cells of an item's picture per row
SHEET_ITEMS = 4  # contact-sheet rows per browsed dataset
SHEET_EXPRESSIONS = 3  # contact-sheet columns


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('--split', choices=SPLITS, default='train',
                        help='which dataloader\'s dataset to browse (default: train)')
    parser.add_argument('--out-dir', '--output-dir', dest='out_dir',
                        help='folder of the pictures (default: <work_dir>/browse_<split>)')
    parser.add_argument('--num-items', type=int, default=16,
                        help='items drawn from the start of each dataset (0: all; default 16)')
    parser.add_argument('--not-show', action='store_true',
                        help='write the pictures only (the default without a display)')
    parser.add_argument('--show-interval', type=float, default=2,
                        help='seconds each item is shown (default 2)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. train_dataloader.dataset.text_mode=original')
    return parser.parse_args(argv)


def has_display() -> bool:
    """Whether windows can be opened (an X11 / Wayland session on Linux)."""
    if sys.platform in ('win32', 'darwin'):
        return True
    return bool(os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY'))


def split_dataset_cfg(cfg: Config, split: str, config: str) -> ConfigDict:
    """``<split>_dataloader.dataset`` of ``cfg`` (read from ``config``), without
    ``LoadCachedEmbedding`` steps; a clear error if the config has no such dataset."""
    loader = cfg.get(f'{split}_dataloader')
    if not loader or not loader.get('dataset'):
        raise ValueError(f'{config} has no {split}_dataloader.dataset: there is no {split} '
                         f'split to browse')
    return without_embedding_cache(loader.dataset)


def without_embedding_cache(node: Any) -> Any:
    """A copy of a dataset config whose pipelines (at any depth: a concatenation's datasets
    too) skip ``LoadCachedEmbedding``, so that the items keep their image."""
    if isinstance(node, dict):
        return type(node)({key: without_embedding_cache(value) for key, value in node.items()})
    if isinstance(node, (list, tuple)):
        return type(node)(without_embedding_cache(value) for value in node
                          if not (isinstance(value, dict)
                                  and value.get('type') == 'LoadCachedEmbedding'))
    return node


def browsed_datasets(dataset) -> List[Tuple[str, Any]]:
    """[(file-name prefix, dataset)]: each dataset of a concatenation, prefixed by its split if
    the splits are all distinct, else by its position; a single dataset unprefixed."""
    parts = getattr(dataset, 'datasets', None)
    if not parts:
        return [('', dataset)]
    splits = [getattr(part, 'split', None) for part in parts]
    names = splits if all(splits) and len(set(splits)) == len(splits) else range(len(parts))
    return [(f'{name}_', part) for name, part in zip(names, parts)]


def sam_view(img: torch.Tensor, preprocessor) -> np.ndarray:
    """The packed (3, h, w) uint8 SAM-branch image -> (P, P, 3) uint8: the image encoder's
    input (the data preprocessor's channel order, normalisation and padding to P = its
    ``pad_size``, else max(h, w)), un-normalised. Its channels are what the model reads as RGB,
    so a wrong ``bgr_to_rgb`` shows as swapped colours. A preprocessor other than
    ``SAMDataPreprocessor``: the packed image, BGR -> RGB, unpadded."""
    if not hasattr(preprocessor, 'sam_images'):
        return img.flip(0).permute(1, 2, 0).numpy()
    pad_size = preprocessor.pad_size
    # unset in configs (the segmentor sets its encoder's size, which SAMResize resized to)
    preprocessor.pad_size = pad_size or max(img.shape[-2:])
    try:
        normalised = preprocessor.sam_images([img])[0]
    finally:
        preprocessor.pad_size = pad_size
    raw = normalised * preprocessor.std + preprocessor.mean
    return raw.round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


def sam_masks(data_sample, size: Tuple[int, int]) -> np.ndarray:
    """The sample's ground truth, one mask per expression -> (N, P, P) bool, aligned with
    :func:`sam_view`'s (P, P) = ``size`` picture.

    The masks stay at the original size in the pipeline (flipped with the image) and the loss
    compares them there, with the predictions upsampled from ``img_shape`` (padding cropped,
    ``postprocess_masks``). Resizing the masks (nearest) to ``img_shape`` instead and padding
    them like the image is that same correspondence seen from the image encoder's side: the
    pixels drawn are the ones the model sees, at its resolution.
    """
    masks = data_sample.gt_instances.masks
    h, w = data_sample.img_shape
    if (masks.height, masks.width) != (h, w):
        masks = masks.resize((h, w))
    masks = masks.to_ndarray().astype(bool)
    return np.pad(masks, ((0, 0), (0, size[0] - h), (0, size[1] - w)))


def mm_view(mm_img: torch.Tensor) -> np.ndarray:
    """The packed (3, S, S) float RGB multimodal view (about 0-1; its normalisation in the
    preprocessor is a plain affine map) -> (S, S, 3) uint8."""
    return (mm_img * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


def draw_item(visualizer: ReferSegVisualizer, item: dict,
              preprocessor) -> Tuple[np.ndarray, List[np.ndarray], np.ndarray]:
    """One packed item -> (its picture: the cells of :func:`make_contact_sheet` in rows of
    ``PANELS_PER_ROW``, the (P, P, 3) RGB panel of each expression, the (N, P, P) masks)."""
    sample = item['data_samples']
    if 'img' not in item['inputs']:
        raise ValueError(f'{sample.img_path}: the item has no SAM-branch image to draw')
    view = sam_view(item['inputs']['img'], preprocessor)
    masks = sam_masks(sample, view.shape[:2])
    texts: Sequence[str] = sample.text
    no_target = sample.get('no_target') or [False] * len(texts)
    panels = [
        visualizer.draw_annotation(view, text, mask, EXPRESSION_COLORS[i % len(EXPRESSION_COLORS)],
                                   bool(no_target[i]))
        for i, (text, mask) in enumerate(zip(texts, masks))
    ]
    cells = panels + ([mm_view(item['inputs']['mm_img'])] if 'mm_img' in item['inputs'] else [])
    rows = [cells[i:i + PANELS_PER_ROW] for i in range(0, len(cells), PANELS_PER_ROW)]
    return make_contact_sheet(rows), panels, masks


def main(argv: Optional[List[str]] = None) -> List[str]:
    """Draw the items; the paths of the per-item pictures written."""
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    register_all_modules()
    dataset_cfg = split_dataset_cfg(cfg, args.split, args.config)
    out_dir = args.out_dir or osp.join(cfg.work_dir, f'browse_{args.split}')
    os.makedirs(out_dir, exist_ok=True)
    # a dataset-only config (configs/_base_/datasets/) gets every SAM model's preprocessor
    preprocessor = MODELS.build(cfg.get('model', {}).get('data_preprocessor')
                                or dict(type='SAMDataPreprocessor'))
    visualizer = ReferSegVisualizer.get_instance('browse_dataset')
    show = not args.not_show and has_display()

    written, sheet_rows = [], []
    for prefix, dataset in browsed_datasets(DATASETS.build(dataset_cfg)):
        count = len(dataset) if args.num_items <= 0 else min(args.num_items, len(dataset))
        for index in range(count):
            item = dataset[index]
            picture, panels, masks = draw_item(visualizer, item, preprocessor)
            stem = osp.splitext(osp.basename(item['data_samples'].img_path))[0]
            path = osp.join(out_dir, f'{prefix}{index}_{stem}.png')
            mmcv.imwrite(picture[..., ::-1], path)
            written.append(path)
            if show:
                visualizer.show(picture, win_name=f'{prefix}{index}_{stem}',
                                wait_time=args.show_interval)
            if index < SHEET_ITEMS:
                picks = distinct_objects_first(masks, min(SHEET_EXPRESSIONS, len(panels)))
                sheet_rows.append([panels[i] for i in picks])
        note = ' (text_mode=random: one draw of sentences)' if getattr(
            dataset, 'text_mode', None) == 'random' else ''
        print(f'{args.split} {prefix.rstrip("_") or type(dataset).__name__}: {count} of '
              f'{len(dataset)} items drawn to {out_dir}{note}', flush=True)
    if sheet_rows:
        sheet = osp.join(out_dir, 'contact_sheet.jpg')
        mmcv.imwrite(make_contact_sheet(sheet_rows)[..., ::-1], sheet)
        print(f'contact sheet: {sheet}', flush=True)
    return written


if __name__ == '__main__':
    main()
