"""mmseg's mIoU of per-class text prompts: the semantic-segmentation reading of ADE20K."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmseg.evaluation import IoUMetric
from torch import Tensor

from mmevf.registry import METRICS


@METRICS.register_module()
class SemanticIoUMetric(IoUMetric):
    """mmseg's ``IoUMetric`` (aAcc, mIoU, mAcc, ...) on one binary mask per prompted class.

    The data samples are those of :class:`ReferSegMetric`: one ``[semantic] {class}`` prompt
    per class present in the image, ``gt_masks`` (N, H, W) at the original size,
    ``gt_instances['labels']`` (N,) the 0-based class of each prompt (load it with mmdet's
    ``LoadAnnotations(with_label=True)``), and ``pred_instances`` ``masks`` (N, H, W) bool and
    ``scores`` (N,) (the predicted IoU of each mask). Each image becomes two (H, W) label maps
    that mmseg's own ``intersect_and_union`` / ``compute_metrics`` score:

    - ground truth: a pixel takes the class of the ground-truth mask covering it, or
      ``ignore_index`` if none does (the dataset's unlabelled pixels, e.g. ADE20K raw 0). The
      masks of one image come from one label map, so they must be disjoint;
    - prediction: a pixel takes the class of the covering predicted mask with the highest score
      (the first on ties), or ``ignore_index`` if none covers it. mmseg's histograms leave
      ``ignore_index`` out of the predicted areas, so such a pixel is a miss of its
      ground-truth class (it lowers that class's IoU and the accuracy, no class gains it).

    Protocol: only the classes present in each image are prompted (EVF-SAM's ADE20K protocol,
    an oracle class list), so this mIoU is *not* comparable to closed-set mmseg mIoU, where the
    model must also reject absent classes. A class never present and never predicted has IoU
    NaN and is left out by mmseg's ``nanmean``. The ADE20K numbers of the EVF-SAM paper are the
    :class:`ReferSegMetric` reading (cIoU / gIoU of the official ``eval.py`` with
    ``val_dataset='ade'``, the present classes prompted, RefCOCO's cIoU / gIoU code).

    ``process`` stores one entry per image (mmseg's four per-class areas, on the CPU), as
    :class:`MetricGroup` and mmdet's ``MultiDatasetsEvaluator`` require. The latter shows every
    metric the images of every source, so an image whose prompts carry no usable class labels
    (a RefCOCO image) stores the reason instead, and ``compute_metrics`` raises it only if
    such an image is among the metric's own.

    Args:
        num_classes: number of classes; ``None`` -> ``len(dataset_meta['classes'])``. Configs
            pass it (150 for ADE20K): under ``MultiDatasetsEvaluator`` / ``MultiSplitDataset``
            every metric receives the metainfo of the *first* dataset (a RefCOCO split).
        class_names: names for mmseg's per-class table; ``None`` -> ``dataset_meta['classes']``
            if it has ``num_classes`` names, else ``'0'``, ``'1'``, ...
        ignore_index: label of unlabelled pixels in both maps.
        kwargs: ``iou_metrics``, ``nan_to_num``, ``beta``, ``collect_device``, ``prefix`` of
            mmseg's ``IoUMetric``. Its ``output_dir`` / ``format_only`` (writing predicted
            PNGs) are not supported.
    """
    default_prefix = None

    def __init__(self,
                 num_classes: Optional[int] = None,
                 class_names: Optional[Sequence[str]] = None,
                 ignore_index: int = 255,
                 **kwargs) -> None:
        if kwargs.get('output_dir') is not None or kwargs.get('format_only'):
            raise ValueError('SemanticIoUMetric does not support output_dir / format_only')
        if num_classes is not None and num_classes < 1:
            raise ValueError(f'num_classes must be positive, got {num_classes}')
        if class_names is not None and num_classes is not None and len(class_names) != num_classes:
            raise ValueError(f'{len(class_names)} class_names for num_classes={num_classes}')
        if num_classes is not None and 0 <= ignore_index < num_classes:
            raise ValueError(f'ignore_index {ignore_index} is a class index (< {num_classes})')
        super().__init__(ignore_index=ignore_index, **kwargs)
        self.num_classes = num_classes
        self.class_names = None if class_names is None else list(class_names)

    def _num_classes(self) -> int:
        if self.num_classes is not None:
            return self.num_classes
        if not self.dataset_meta or 'classes' not in self.dataset_meta:
            raise ValueError('SemanticIoUMetric: no num_classes and no dataset_meta["classes"]')
        return len(self.dataset_meta['classes'])

    def _class_names(self) -> List[str]:
        num_classes = self._num_classes()
        if self.class_names is not None:
            if len(self.class_names) != num_classes:
                raise ValueError(f'{len(self.class_names)} class_names for {num_classes} classes')
            return self.class_names
        classes = (self.dataset_meta or {}).get('classes')
        if classes is not None and len(classes) == num_classes:
            return list(classes)
        return [str(i) for i in range(num_classes)]

    def label_map(self, masks: Tensor, labels: Tensor, order: Optional[Tensor] = None) -> Tensor:
        """(N, H, W) bool masks and their (N,) classes -> (H, W) long label map.

        A pixel takes the class of the first mask covering it in ``order`` (default: 0..N-1),
        or ``ignore_index`` where no mask covers it.
        """
        label_map = torch.full(masks.shape[1:], self.ignore_index, dtype=torch.long,
                               device=masks.device)
        if not len(masks):
            return label_map
        if order is not None:
            masks, labels = masks[order], labels[order]
        first = masks.byte().argmax(0)  # index of the first True along N (0 if none)
        covered = masks.any(0)
        label_map[covered] = labels.to(masks.device)[first[covered]]
        return label_map

    @staticmethod
    def prompt_labels(sample: dict, num_masks: int,
                      num_classes: int) -> Tuple[Optional[Tensor], Optional[str]]:
        """The (N,) class of every prompt, or ``None`` and what is wrong with them."""
        path = sample.get('img_path')
        labels = (sample.get('gt_instances') or {}).get('labels')
        if labels is None:
            return None, (f'{path}: no gt_instances labels; the test pipeline needs '
                          f'LoadAnnotations(with_label=True)')
        labels = torch.as_tensor(labels, dtype=torch.long)
        if labels.shape != (num_masks, ):
            return None, f'{path}: {tuple(labels.shape)} labels for {num_masks} masks'
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes:
            # mmseg's histograms would silently drop them
            return None, (f'{path}: labels {labels.tolist()} outside [0, {num_classes}); '
                          f'set num_classes')
        return labels, None

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        num_classes = self._num_classes()
        for sample in data_samples:
            path = sample.get('img_path')
            pred = sample['pred_instances']['masks'].bool()
            scores = sample['pred_instances']['scores'].to(pred.device)
            gt = sample['gt_masks'].to_tensor(torch.bool, pred.device)
            if pred.shape != gt.shape:
                raise ValueError(f'{path}: predicted masks {tuple(pred.shape)} '
                                 f'do not match ground truth {tuple(gt.shape)}')
            labels, problem = self.prompt_labels(sample, len(gt), num_classes)
            if problem is not None:
                # mmdet's MultiDatasetsEvaluator shows every metric the samples of every
                # source and keeps each metric's own slice only: a RefCOCO sample has no
                # class labels, which is an error only if it reaches compute_metrics
                self.results.append(problem)
                continue
            if bool((gt.sum(0) > 1).any()):  # a referring source's masks may overlap
                self.results.append(f'{path}: ground-truth masks overlap; expected one class '
                                    'a pixel')
                continue
            labels = labels.to(pred.device)
            if scores.shape != (len(gt), ):
                raise ValueError(f'{path}: {tuple(scores.shape)} scores for {len(gt)} masks')
            gt_map = self.label_map(gt, labels)
            # highest score first; stable, so the first mask wins ties
            order = torch.sort(scores, descending=True, stable=True).indices
            pred_map = self.label_map(pred, labels, order)
            self.results.append(
                self.intersect_and_union(pred_map, gt_map, num_classes, self.ignore_index))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        problems = [r for r in results if isinstance(r, str)]
        if problems:
            raise ValueError(f'SemanticIoUMetric: {len(problems)} of {len(results)} images '
                             f'cannot be scored, e.g. {problems[0]}')
        # the parent names the rows of its per-class table by dataset_meta['classes'], which
        # may belong to another dataset (see num_classes): lend it ours for the call
        meta = self.dataset_meta
        self.dataset_meta = {**(meta or {}), 'classes': self._class_names()}
        try:
            return super().compute_metrics(results)
        finally:
            self.dataset_meta = meta
