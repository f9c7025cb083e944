"""Which attributes does a SynthRef checkpoint follow? cIoU per expression type, and linear probes
of colour and shape on what SAM is given.

``python tools/analysis/probe_attributes.py CONFIG CHECKPOINT [--data-root data/synthref]
[--split val] [--max-images N]``

Every image of ``--split`` (the config's val dataset, its test pipeline and data preprocessor)
goes through the model once, and the tool prints

1. the cIoU (100 · ΣI / ΣU, as ``ReferSegMetric``) of the model's masks for each type of
   SynthRef expression, told apart by the generator's own templates
   (:func:`~tools.dataset_converters.synthref.parse_expression`): ``attribute`` ("the red
   circle"), ``superlative`` ("the leftmost square", "the larger triangle") and ``relational``
   ("the circle left of the white square"); ``all`` is the split's cIoU;
2. the held-out accuracy of linear probes (:func:`linear_probe`: fit on the train split, scored
   on ``--split``) that read the colour and the shape of

   - each object from its **image embedding**: SAM's image embedding (the model's
     ``image_encoder`` on the SAM view the pipeline prepares) averaged over the object's mask;
   - the target of each attribute expression from its **prompt**: what the projector gives SAM,

   each beside chance: the held-out share of the train split's most frequent class (what a
   probe on constant features scores).

Colour present in the image embedding but absent from the prompt means the model selects
without reading the colour word. An object's shape comes from its expressions (every template
names the target's shape), its colour from its pixels in the SAM view (the nearest of the
generator's ``COLORS``; attribute expressions name the same). Nothing is trained but the probes
(a few seconds); nothing is written.
"""
import argparse
import os.path as osp
import sys
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from torch import Tensor

from mmevf.apis import load_weights
from mmevf.engine.runner_setup import register_all_modules
from mmevf.registry import DATASETS, MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # SynthRef's vocabulary is imported from the repository root
    sys.path.insert(0, ROOT)
from tools.dataset_converters.synthref import (COLORS, EXPRESSION_TYPES, SHAPES,  # noqa: E402
                                               parse_expression)

OTHER = 'other'  # expressions no SynthRef template writes (printed only if there are any)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--data-root', default='data/synthref',
                        help='SynthRef folder (default: data/synthref)')
    parser.add_argument('--split', default='val', help='held-out split (default: val)')
    parser.add_argument('--max-images', type=int, help='images read per split (default: all)')
    parser.add_argument('--tokenizer', help='tokenizer folder (default: the pipeline\'s)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the probes')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. val_dataloader.batch_size=2')
    return parser.parse_args(argv)


# ---------------------------------------------------------------------- the probe
def linear_probe(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor,
                 steps: int = 300, lr: float = 0.05, weight_decay: float = 1e-3,
                 seed: int = 0) -> float:
    """Accuracy (%) on ``test_x`` of a softmax-linear classifier fit on (``train_x`` (N, D),
    ``train_y`` (N,) class indices): features standardised with the train statistics, full-batch
    Adam on cross-entropy + ``weight_decay`` · ‖W‖², from zero weights (deterministic)."""
    torch.manual_seed(seed)
    train_x, test_x = train_x.double(), test_x.double()
    mean, std = train_x.mean(0), train_x.std(0, unbiased=False)
    train_x, test_x = (train_x - mean) / (std + 1e-6), (test_x - mean) / (std + 1e-6)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    weight = torch.zeros(train_x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad()
            loss = F.cross_entropy(train_x @ weight + bias, train_y)
            (loss + weight_decay * weight.square().sum()).backward()
            optimizer.step()
    with torch.no_grad():
        predicted = (test_x @ weight + bias).argmax(1)
    return 100 * (predicted == test_y).double().mean().item()


def chance(train_y: Tensor, test_y: Tensor) -> float:
    """Share (%) of ``test_y`` in the most frequent class of ``train_y``."""
    return 100 * (test_y == torch.bincount(train_y).argmax()).double().mean().item()


# ---------------------------------------------------------------------- reading the model
def nearest_color(view: Tensor, inside: Tensor) -> str:
    """Name of the generator's colour (``COLORS``, BGR) nearest to the mean of the (3, h, w)
    BGR ``view`` over the (h, w) bool ``inside``."""
    mean = view.flatten(1)[:, inside.flatten()].double().mean(1)
    palette = torch.tensor(list(COLORS.values()), dtype=torch.float64)
    return list(COLORS)[int((palette - mean).norm(dim=1).argmin())]


def sam_frame(masks: Tensor, img_shape: Sequence[int], pad_size: int) -> Tensor:
    """(N, H, W) masks at the original size -> (N, pad_size, pad_size) coverage in [0, 1] in the
    frame of SAM's input: resized to ``img_shape`` as the SAM view is, padded bottom / right."""
    h, w = img_shape[:2]
    resized = F.interpolate(masks.float()[:, None], (h, w), mode='bilinear',
                            align_corners=False, antialias=True)[:, 0].clamp(0, 1)
    return F.pad(resized, (0, pad_size - w, 0, pad_size - h))


class Features:
    """What :func:`read_split` gathers: rows of features with colour / shape labels."""

    def __init__(self) -> None:
        self.rows: List[Tensor] = []
        self.colors: List[int] = []
        self.shapes: List[int] = []

    def add(self, row: Tensor, color: str, shape: str) -> None:
        self.rows.append(row.double().cpu())
        self.colors.append(list(COLORS).index(color))
        self.shapes.append(SHAPES.index(shape))

    def tensors(self) -> Dict[str, Tensor]:
        return dict(x=torch.stack(self.rows) if self.rows else torch.zeros(0, 1),
                    colour=torch.tensor(self.colors, dtype=torch.long),
                    shape=torch.tensor(self.shapes, dtype=torch.long))


def read_split(model: torch.nn.Module, dataset, predict: bool, batch_size: int = 4,
               max_images: Optional[int] = None) -> dict:
    """One pass of the model over ``dataset`` (``text_mode='original'``, the test pipeline).

    Returns ``dict(objects=Features, prompts=Features, intersection={type: int},
    union={type: int}, counts={type: int}, images=int)``: one ``objects`` row per annotated
    object (its mask-pooled image embedding), one ``prompts`` row per attribute expression
    (the projector's output, flattened), and with ``predict`` the intersections and unions of
    the predicted masks by expression type.
    """
    objects, prompts = Features(), Features()
    intersection: Dict[str, int] = defaultdict(int)
    union: Dict[str, int] = defaultdict(int)
    counts: Dict[str, int] = defaultdict(int)
    pad_size = model.data_preprocessor.pad_size
    indices = list(range(len(dataset)))[:max_images]
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            batch_indices = indices[start:start + batch_size]
            raw = pseudo_collate([dataset[i] for i in batch_indices])
            data = model.data_preprocessor(raw, False)
            inputs, samples = data['inputs'], data['data_samples']
            embeddings = model.image_embeddings(inputs)  # (B, C, g, g)
            prompt_rows = model.encode_prompts(inputs).flatten(1)  # (N, T * C)
            if predict:
                samples = model(inputs, samples, mode='predict')
            row = 0
            for b, (index, sample) in enumerate(zip(batch_indices, samples)):
                texts = list(sample.text)
                parsed = [parse_expression(t) for t in texts]
                gt = sample.gt_instances.masks.to_tensor(torch.bool, 'cpu')
                for j, expression in enumerate(parsed):
                    if expression is not None and expression.type == 'attribute':
                        prompts.add(prompt_rows[row + j], expression.color, expression.shape)
                row += len(texts)
                if predict:
                    pred = sample.pred_instances.masks.cpu().bool()
                    for j, expression in enumerate(parsed):
                        kind = OTHER if expression is None else expression.type
                        intersection[kind] += int((pred[j] & gt[j]).sum())
                        union[kind] += int((pred[j] | gt[j]).sum())
                        counts[kind] += 1
                # one row per object: its expressions share the annotation's mask
                polygons = [str(inst['mask'])
                            for inst in dataset.get_data_info(index)['instances']]
                frame = sam_frame(gt, sample.img_shape, pad_size)
                weights = F.adaptive_avg_pool2d(frame, embeddings.shape[-2:])  # (N, g, g)
                view = raw['inputs']['img'][b]  # (3, h, w) uint8 BGR, the SAM view
                h, w = view.shape[-2:]
                for polygon in dict.fromkeys(polygons):
                    members = [j for j, p in enumerate(polygons) if p == polygon]
                    shapes = {parsed[j].shape for j in members if parsed[j] is not None}
                    if len(shapes) != 1 or weights[members[0]].sum() == 0:
                        continue  # no SynthRef expression (or a mask outside the view)
                    pooled = (embeddings[b] * weights[members[0]]).sum((1, 2)) / weights[
                        members[0]].sum()
                    inside = frame[members[0], :h, :w] > 0.5
                    if inside.any():
                        objects.add(pooled, nearest_color(view, inside), shapes.pop())
    return dict(objects=objects, prompts=prompts, intersection=dict(intersection),
                union=dict(union), counts=dict(counts), images=len(indices))


# ---------------------------------------------------------------------- the report
def ciou_table(result: dict) -> str:
    """cIoU per expression type (``other`` only when there are any), then ``all``."""
    kinds = list(EXPRESSION_TYPES) + ([OTHER] if result['counts'].get(OTHER) else [])
    lines = [f'{"expression type":<16}{"count":>8}{"cIoU":>9}', '-' * 33]
    for kind, inter, uni, count in [
            (k, result['intersection'].get(k, 0), result['union'].get(k, 0),
             result['counts'].get(k, 0)) for k in kinds] + [
            ('all', sum(result['intersection'].values()), sum(result['union'].values()),
             sum(result['counts'].values()))]:
        ciou = f'{100 * inter / max(uni, 1):9.2f}' if count else f'{"-":>9}'
        lines.append(f'{kind:<16}{count:>8}{ciou}')
    return '\n'.join(lines)


def probe_rows(train: dict, test: dict, seed: int = 0) -> List[tuple]:
    """(name, train count, test count, held-out accuracy %, chance %) of the four probes;
    accuracies are None where a split has no row."""
    rows = []
    for source, key in (('image embedding', 'objects'), ('prompt (attribute expr.)', 'prompts')):
        fit, held = train[key].tensors(), test[key].tensors()
        for label in ('colour', 'shape'):
            accuracy = chance_level = None
            if len(fit['x']) and len(held['x']):
                accuracy = linear_probe(fit['x'], fit[label], held['x'], held[label], seed=seed)
                chance_level = chance(fit[label], held[label])
            rows.append((f'{source} -> {label}', len(fit['x']), len(held['x']), accuracy,
                         chance_level))
    return rows


def probe_table(rows: List[tuple], split: str) -> str:
    lines = [f'{"linear probe":<36}{"train":>7}{split:>7}{"held-out %":>12}{"chance %":>10}',
             '-' * 72]
    for name, n_train, n_test, accuracy, chance_level in rows:
        cells = (f'{accuracy:12.1f}{chance_level:10.1f}' if accuracy is not None
                 else f'{"-":>12}{"-":>10}')
        lines.append(f'{name:<36}{n_train:>7}{n_test:>7}{cells}')
    return '\n'.join(lines)


def dataset_for(cfg: Config, data_root: str, split: str):
    """The config's val dataset on ``split`` of ``data_root``, every expression of an image in
    one item (``text_mode='original'``), with its (test) pipeline."""
    dataset_cfg = cfg.val_dataloader.dataset.copy()
    if 'split' not in dataset_cfg:
        raise ValueError(f'the val dataset ({dataset_cfg.get("type")}) has no `split`; this '
                         f'tool needs a single refer-format dataset (SynthRef)')
    dataset_cfg.update(data_root=data_root.rstrip('/') + '/', split=split, text_mode='original')
    return DATASETS.build(dataset_cfg)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.tokenizer:
        for step in cfg.val_dataloader.dataset.pipeline:
            if str(step['type']).endswith('TokenizeText'):
                step['tokenizer'] = args.tokenizer
    register_all_modules()
    MMLogger.get_current_instance().setLevel('WARNING')
    model = MODELS.build(cfg.model)
    for name in ('encode_prompts', 'image_embeddings'):
        if not hasattr(model, name):
            raise TypeError(f'{type(model).__name__} has no {name}: this tool probes EVF-SAM '
                            f'models (image encoder + projector prompts)')
    load_weights(model, args.checkpoint, args.config)
    model.eval()
    batch_size = cfg.val_dataloader.get('batch_size', 4)
    train = read_split(model, dataset_for(cfg, args.data_root, 'train'), predict=False,
                       batch_size=batch_size, max_images=args.max_images)
    test = read_split(model, dataset_for(cfg, args.data_root, args.split), predict=True,
                      batch_size=batch_size, max_images=args.max_images)
    rows = probe_rows(train, test, args.seed)
    print(f'{args.checkpoint} on {args.data_root} {args.split} ({test["images"]} images; '
          f'probes fit on {train["images"]} train images)')
    print(ciou_table(test))
    print()
    print(probe_table(rows, args.split), flush=True)
    return dict(test=test, probes=rows)


if __name__ == '__main__':
    main()
