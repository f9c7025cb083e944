"""Text-prompted segmentation for people: images + expressions -> masks, as an mmengine
``BaseInferencer`` built like ``mmdet.apis.DetInferencer`` (``mmevf.apis.TextSegInferencer``;
the CLI is ``tools/infer.py``)."""
import copy
import json
import math
import os
import os.path as osp
import warnings
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Union

import cv2
import mmcv
import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import ConfigDict
from mmengine.infer import BaseInferencer
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement
from mmengine.visualization import Visualizer
from rich.progress import track

from mmevf.checkpoint import load_weights
from mmevf.registry import INFERENCERS, MODELS
from .inference_inputs import (DTYPES, IMAGE_SUFFIXES, ImageType, TextsType, check_array,
                               check_box, check_inside, check_points, dataset_pipeline,
                               describe_prompt, follow_texts, is_expression, resolve_config)

# Pipeline steps replaced or dropped at inference (matched on the end of the type name, so
# 'mmdet.LoadAnnotations' and 'LoadAnnotations' both count).
IMAGE_LOADERS = ('LoadImageFromFile', 'LoadImageFromNDArray', 'InferencerLoader')
ANNOTATION_LOADERS = ('LoadAnnotations', )


def _step_type(step: dict) -> str:
    kind = step['type']
    return kind if isinstance(kind, str) else kind.__name__


@INFERENCERS.register_module()
class TextSegInferencer(BaseInferencer):
    """Segment what expressions describe: ``inferencer(images, texts, points, boxes)``.

    All expressions of an image travel in one data sample, so the model encodes each image
    once (EVF-SAM: one SAM image-encoder pass per image, however many expressions). Works
    with any mmevf segmentor that takes the config's test pipeline and fills
    ``pred_instances.masks`` / ``scores`` in ``mode='predict'``.

    Built as mmdet's ``DetInferencer`` is: the test pipeline is an ``mmcv.transforms.Compose``
    whose image-loading step is mmdet's ``InferencerLoader`` (paths and arrays alike), batches
    go through :meth:`preprocess` / :meth:`forward` / :meth:`visualize` / :meth:`postprocess`,
    and pictures are drawn by the config's visualizer (``ReferSegVisualizer.add_datasample``).

    Args:
        model: config file path, or a config name (``'evf-tiny_synthref'``) found in the
            checkout's ``configs/`` or, installed, in the package's ``.mim/configs``.
        weights: checkpoint (mmevf / MMEngine ``.pth``, state dict, ``.safetensors``, or an
            official EVF-SAM folder); ``None`` keeps random weights (with a warning).
        tokenizer: tokenizer folder replacing the one of the pipeline's ``TokenizeText``.
        device: ``'cpu'``, ``'cuda'``, ...; ``None`` picks the available one.
        dtype: ``'float32'`` (default), ``'bfloat16'`` or ``'float16'`` weights and inputs.
        bf16: shortcut for ``dtype='bfloat16'``.
        show_progress: a progress bar over the batches.

    An expression may add points and a box to its text, or have no text (``None``): SAM is
    then prompted by the points / box alone (models that support it: EVF-SAM).

    Example:
        >>> inferencer = TextSegInferencer('evf-tiny_synthref', weights='tiny.pth')
        >>> out = inferencer('img.jpg', ['the red circle', '[semantic] sky'])
        >>> out['predictions'][0]['masks'].shape  # (2, H, W) bool
        >>> # expression 0: text + a foreground and a background point; 1: a box alone
        >>> out = inferencer('img.jpg', ['the red circle', None],
        ...                  points=[[(40, 30), (90, 60, 0)], None],
        ...                  boxes=[None, (10, 10, 120, 80)])
    """
    preprocess_kwargs: set = set()
    forward_kwargs: set = set()
    visualize_kwargs: set = {'return_vis', 'show', 'wait_time', 'img_out_dir'}
    postprocess_kwargs: set = {'pred_out_dir'}

    def __init__(self,
                 model: str,
                 weights: Optional[str] = None,
                 tokenizer: Optional[str] = None,
                 device: Optional[str] = None,
                 dtype: Union[str, torch.dtype, None] = None,
                 bf16: bool = False,
                 show_progress: bool = True) -> None:
        from mmevf.engine.runner_setup import register_all_modules
        register_all_modules(init_scope=False)
        init_default_scope('mmevf')
        if isinstance(dtype, str):
            if dtype not in DTYPES:
                raise ValueError(f'dtype must be one of {sorted(DTYPES)}, got {dtype!r}')
            dtype = DTYPES[dtype]
        self.dtype = torch.bfloat16 if bf16 else (dtype or torch.float32)
        self.tokenizer = tokenizer
        if weights is not None and not osp.exists(weights):
            raise FileNotFoundError(f'checkpoint {weights} does not exist')
        self.config_path = resolve_config(model) if isinstance(model, str) else None
        super().__init__(self.config_path or model, weights, device, 'mmevf', show_progress)

    # ------------------------------------------------------------------ building
    def _init_model(self, cfg: ConfigDict, weights: Optional[str],
                    device: str = 'cpu') -> torch.nn.Module:
        # Built from the config only: pretrained files named in it are not read, `weights`
        # holds every parameter (and may be an EVF-SAM folder, which mmengine cannot read).
        model = MODELS.build(cfg.model)
        model.cfg = cfg
        if weights is None:
            warnings.warn('no weights given: the model keeps its random initialisation')
        else:
            load_weights(model, weights, self.config_path or 'the config')
        return model.to(device=device, dtype=self.dtype).eval()

    def _init_pipeline(self, cfg: ConfigDict) -> Compose:
        """The config's test pipeline, its image loading done by mmdet's ``InferencerLoader``
        (a path or an array) and its ground-truth loading dropped."""
        steps = cfg.get('test_pipeline') or dataset_pipeline(cfg)
        if not steps:
            raise ValueError('the config has no test pipeline (test_pipeline or '
                             'test_dataloader.dataset.pipeline)')
        steps = [copy.deepcopy(dict(step)) for step in steps]  # the config stays as written
        steps = [s for s in steps if not _step_type(s).endswith(ANNOTATION_LOADERS)]
        loaders = [i for i, s in enumerate(steps) if _step_type(s).endswith(IMAGE_LOADERS)]
        if loaders:
            # keeps the loader's own arguments (backend_args, color_type, ...), as mmdet does
            steps[loaders[0]]['type'] = 'mmdet.InferencerLoader'
            steps = [s for i, s in enumerate(steps) if i not in loaders[1:]]
        else:
            steps.insert(0, dict(type='mmdet.InferencerLoader'))
        tokenizers = [s for s in steps if _step_type(s).endswith('TokenizeText')]
        if self.tokenizer is not None:
            if not tokenizers:
                raise ValueError('tokenizer= given, but the test pipeline has no TokenizeText')
            for step in tokenizers:
                step['tokenizer'] = str(self.tokenizer)
        return Compose(steps)

    def _init_visualizer(self, cfg: ConfigDict) -> Optional[Visualizer]:
        vis_cfg = copy.deepcopy(cfg.get('visualizer')) or ConfigDict(type='ReferSegVisualizer')
        vis_cfg.pop('vis_backends', None)  # pictures are returned / written here, not logged
        # its own instance name: a runner in this process may own the config's 'visualizer'
        vis_cfg['name'] = f'text_seg_inferencer_{id(self)}'
        return super()._init_visualizer(ConfigDict(visualizer=vis_cfg))

    # ------------------------------------------------------------------ inputs
    def pair_inputs(self, inputs: Union[ImageType, Sequence[ImageType]],
                    texts: TextsType, points: Optional[Sequence] = None,
                    boxes: Optional[Sequence] = None) -> List[dict]:
        """Images and expressions -> one item per image with all its expressions.

        ``texts``: for one image, a str or a list of str; for several images, a str (the
        same expression everywhere) or one entry (str or list of str) per image. A folder
        stands for the images in it, each getting every expression of a str / list of str.
        ``None`` in place of a str is an expression without text (its points / box only).

        ``points`` and ``boxes`` (``None``: none) are nested exactly as ``texts``, holding in
        place of each expression its points (a list of (x, y) or (x, y, label); label 1
        foreground, the default, or 0 background) or its box (x1, y1, x2, y2), or ``None``;
        original-image pixels. E.g. ``texts=['a', None]`` for one image takes
        ``points=[[(4, 5)], [(7, 8), (9, 9, 0)]]``, ``boxes=[None, (1, 2, 30, 40)]``.
        Whether they lie inside the image is checked when it is loaded.

        Returns:
            ``dict(img, name, stem, img_id, img_path, text, points, boxes)`` per image:
            ``img`` the path, or the array as (H, W, 3) uint8 BGR; ``name`` for messages;
            ``stem`` for file names (unique); ``text`` the list of its expressions (str or
            None), ``points`` / ``boxes`` one entry per expression: None, (P, 3) float64 rows
            (x, y, label), (4,) float64.
        """
        images = self._inputs_to_list(inputs)
        from_dir = isinstance(inputs, str) and osp.isdir(inputs)
        if from_dir:
            images = sorted(p for p in images if p.lower().endswith(IMAGE_SUFFIXES))
        single = not isinstance(inputs, (list, tuple)) and len(images) == 1
        if not images:
            raise ValueError(f'no image in {inputs}' if from_dir else 'no image given')
        if is_expression(texts):
            mode, per_image = 'one', [[texts]] * len(images)
        elif single or (from_dir and all(is_expression(t) for t in texts)):
            # every image gets all expressions
            mode, per_image = 'shared', [list(texts)] * len(images)
        else:
            texts = list(texts)
            if len(texts) != len(images):
                raise ValueError(f'{len(images)} images but {len(texts)} text entries: give '
                                 f'one entry (str or list of str) per image, or one str')
            mode, per_image = 'per_image', [[t] if is_expression(t) else list(t) for t in texts]
        per_image_points = follow_texts(points, texts, per_image, mode, 'points')
        per_image_boxes = follow_texts(boxes, texts, per_image, mode, 'boxes')
        items, stems = [], set()
        for i, (image, expressions, image_points, image_boxes) in enumerate(
                zip(images, per_image, per_image_points, per_image_boxes)):
            name = image if isinstance(image, str) else f'image #{i} (array)'
            if isinstance(image, str):
                if not osp.isfile(image):
                    raise FileNotFoundError(f'image {image} does not exist')
                if osp.getsize(image) == 0:  # mmcv's decoder fails on it without the name
                    raise ValueError(f'cannot decode image {image}: the file is empty')
            elif isinstance(image, np.ndarray):
                # the loader takes arrays as they are: BGR uint8 (H, W, 3) is checked here
                image = check_array(image, name)
            else:
                raise TypeError(f'image #{i}: expected a path or a numpy array, got '
                                f'{type(image).__name__}')
            if not expressions:
                raise ValueError(f'no expression for {name}')
            checked_points, checked_boxes = [], []
            for j, (text, expr_points, box) in enumerate(
                    zip(expressions, image_points, image_boxes)):
                if text is not None and not isinstance(text, str):
                    raise TypeError(f'expression #{j} for {name} is a {type(text).__name__}, '
                                    f'not a str (or None)')
                if text is not None and not text.strip():
                    raise ValueError(f'empty expression #{j} for {name}')
                where = f'expression #{j} for {name}'
                checked_points.append(check_points(expr_points, where))
                checked_boxes.append(check_box(box, where))
                if text is None and checked_points[-1] is None and checked_boxes[-1] is None:
                    raise ValueError(f'{where} has no prompt: give a text, points or a box')
            stem = osp.splitext(osp.basename(image))[0] if isinstance(image, str) else f'{i:08d}'
            stem = stem if stem not in stems else f'{stem}_{i}'
            stems.add(stem)
            items.append(dict(img=image, name=name, stem=stem, img_id=i,
                              img_path=image if isinstance(image, str) else None,
                              text=list(expressions), points=checked_points,
                              boxes=checked_boxes))
        return items

    def _load(self, item: dict) -> dict:
        """One item of :meth:`pair_inputs` through the pipeline -> ``dict(inputs,
        data_samples)``; a file that does not decode is named. Points and boxes are attached
        to the packed sample (:meth:`attach_prompts`)."""
        # InferencerLoader reads `img_path` from disk and takes `img` as the loaded array.
        # Only real texts reach the tokenizer; an image without any skips it.
        texts = [text for text in item['text'] if text is not None]
        results = dict(text=texts, img_id=item['img_id'])
        if item['img_path'] is None:
            results['img'] = item['img']
        else:
            results['img_path'] = item['img_path']
        pipeline = self.pipeline if texts else Compose(
            [t for t in self.pipeline.transforms if type(t).__name__ != 'TokenizeText'])
        try:
            packed = pipeline(results)
        except AssertionError as err:
            # mmcv's LoadImageFromFile asserts that cv2 decoded something
            if item['img_path'] is None or 'failed to load image' not in str(err):
                raise
            packed = None
        if packed is None:  # also a loader with ignore_empty=True
            raise ValueError(f'cannot decode image {item["name"]}: not an image file, or '
                             f'corrupt')
        if len(texts) < len(item['text']) or any(
                p is not None for p in item['points'] + item['boxes']):
            self.attach_prompts(packed['data_samples'], item)
        return packed

    @staticmethod
    def attach_prompts(sample: BaseDataElement, item: dict) -> None:
        """Put the item's per-expression points / boxes on its packed data sample, as the
        model reads them (``TextPromptSegmentor``): ``text`` (None: no text), and in
        original-image pixels ``prompt_points`` (P, 2) float64, ``prompt_point_labels`` (P,)
        long, ``prompt_boxes`` (4,) float64, each ``None`` where absent. Points and boxes
        outside the image raise a ValueError naming the image and the expression."""
        for j, (points, box) in enumerate(zip(item['points'], item['boxes'])):
            check_inside(points, box, sample.ori_shape, f'expression #{j} for {item["name"]}')
        sample.set_metainfo(dict(text=list(item['text'])))
        if 'text_ids' not in sample:  # no text at all: the tokenizer was skipped
            sample.text_ids = []
        sample.prompt_points = [None if p is None else torch.from_numpy(p[:, :2].copy())
                                for p in item['points']]
        sample.prompt_point_labels = [None if p is None else torch.from_numpy(p[:, 2]).long()
                                      for p in item['points']]
        sample.prompt_boxes = [None if b is None else torch.from_numpy(b.copy())
                               for b in item['boxes']]

    # ------------------------------------------------------------------ running
    def __call__(self,
                 inputs: Union[ImageType, Sequence[ImageType]],
                 texts: TextsType,
                 points: Optional[Sequence] = None,
                 boxes: Optional[Sequence] = None,
                 batch_size: int = 1,
                 return_datasamples: bool = False,
                 return_vis: bool = False,
                 show: bool = False,
                 wait_time: float = 0.,
                 out_dir: str = '') -> dict:
        """Segment ``texts`` in ``inputs`` (see :meth:`pair_inputs` for the forms).

        Args:
            points: per expression (nested as ``texts``), a list of (x, y) or
                (x, y, label) points (label 1 foreground, default; 0 background), or None.
            boxes: per expression (nested as ``texts``), (x1, y1, x2, y2) or None.
            batch_size: images per forward pass (each with all its expressions).
            return_datasamples: return the model's data samples instead of dicts.
            return_vis: also return the drawings, one (H, W, 3) RGB array per expression.
            show: show the drawings in a window.
            out_dir: write ``vis/{stem}_{i}.png`` (overlay with the expression),
                ``masks/{stem}_{i}.png`` (0 / 255) and ``preds/{stem}.json`` there.

        Returns:
            ``dict(predictions=[...], visualization=[...] or None)``, one entry per image:
            ``dict(img_path, stem, texts, masks=(N, H, W) bool array at the original size,
            scores=[N floats], points, boxes)`` (see :meth:`pred2dict`) and a list of N
            drawings.
        """
        items = self.pair_inputs(inputs, texts, points, boxes)
        batches: Iterable[dict] = self.preprocess(items, batch_size=batch_size)
        if self.show_progress:
            batches = track(batches, description='Inference',
                            total=math.ceil(len(items) / batch_size))
        img_out_dir = osp.join(out_dir, 'vis') if out_dir else ''
        results: Dict[str, list] = dict(predictions=[], visualization=[])
        # As DetInferencer: draw and write each batch as it comes, not after the whole run.
        for start, data in zip(range(0, len(items), batch_size), batches):
            batch_items = items[start:start + batch_size]
            preds = self.forward(data)
            for pred, item in zip(preds, batch_items):
                pred.set_metainfo(dict(stem=item['stem']))
            visualization = self.visualize(batch_items, preds, return_vis=return_vis,
                                           show=show, wait_time=wait_time,
                                           img_out_dir=img_out_dir)
            batch_results = self.postprocess(preds, visualization, return_datasamples,
                                             pred_out_dir=out_dir)
            results['predictions'].extend(batch_results['predictions'])
            results['visualization'].extend(batch_results['visualization'] or [])
        return dict(predictions=results['predictions'],
                    visualization=results['visualization'] if return_vis else None)

    def preprocess(self, inputs: List[dict], batch_size: int = 1,
                   **kwargs) -> Iterator[dict]:
        """Items of :meth:`pair_inputs` -> collated batches of ``batch_size`` images, each
        ``dict(inputs=[...], data_samples=[...])`` as ``model.test_step`` takes them."""
        chunks = self._get_chunk_data(map(self._load, inputs), batch_size)
        for data in map(self.collate_fn, chunks):
            samples = data['data_samples']
            if any('prompt_points' in sample for sample in samples) and not any(
                    len(sample.get('text_ids', [])) for sample in samples):
                # points / boxes only: no text batch (the data preprocessor rejects an empty one)
                for sample in samples:
                    del sample.text_ids
            yield data

    def forward(self, inputs: dict, **kwargs) -> list:
        with torch.inference_mode():
            return self.model.test_step(inputs)

    def visualize(self, inputs: List[dict], preds: list, return_vis: bool = False,
                  show: bool = False, wait_time: float = 0.,
                  img_out_dir: str = '') -> Optional[List[List[np.ndarray]]]:
        """One drawing per expression, by the visualizer's ``add_datasample``: the mask over
        the image, the expression on top (with its point count and box, drawn as well:
        foreground points green, background red, the box yellow); written as
        ``img_out_dir/{stem}_{i}.png``.

        Returns:
            with ``return_vis``, per image a list of (H, W, 3) RGB uint8 drawings, else None.
        """
        if not (return_vis or show or img_out_dir):
            return None
        drawings = []
        for item, pred in zip(inputs, preds):
            if item['img_path'] is None:
                image = item['img'][..., ::-1]  # checked BGR array -> RGB
            else:
                image = mmcv.imread(item['img_path'], channel_order='rgb')
            drawn = []
            points, boxes = self.prompts_of(pred)
            for i, text in enumerate(pred.text):
                # One expression per call, so that `get_image()` (the last drawing, as in
                # DetInferencer) is this expression's picture.
                caption = describe_prompt(text, points[i], boxes[i])
                single = pred.new(metainfo=dict(text=[caption]),
                                  pred_instances=pred.pred_instances[i:i + 1])
                geometric = points[i] is not None or boxes[i] is not None
                self.visualizer.add_datasample(item['name'], image, single, draw_gt=False,
                                               show=show and not geometric,
                                               wait_time=wait_time)
                drawing = self.visualizer.get_image()
                if geometric:
                    drawing = self.draw_geometry(drawing, points[i], boxes[i],
                                                 drawing.shape[1] / image.shape[1])
                    if show:
                        self.visualizer.show(drawing, win_name=f'{item["name"]}: {caption}',
                                             wait_time=wait_time)
                if img_out_dir:
                    mmcv.imwrite(drawing[..., ::-1],
                                 osp.join(img_out_dir, f'{item["stem"]}_{i}.png'))
                drawn.append(drawing)
            drawings.append(drawn)
        return drawings if return_vis else None

    @staticmethod
    def draw_geometry(drawing: np.ndarray, points: Optional[list], box: Optional[list],
                      scale: float) -> np.ndarray:
        """(H', W', 3) RGB drawing of an image upscaled by ``scale`` -> a copy with the points
        (foreground green, background red) and the box (yellow) of one expression on it."""
        drawing = np.ascontiguousarray(drawing).copy()
        thickness = max(1, round(max(drawing.shape[:2]) / 256))
        if box is not None:
            x1, y1, x2, y2 = (round(v * scale) for v in box)
            cv2.rectangle(drawing, (x1, y1), (x2, y2), (255, 220, 0), thickness)
        for x, y, label in points or []:
            center = (round(x * scale), round(y * scale))
            color = (40, 220, 40) if label == 1 else (230, 40, 40)
            cv2.circle(drawing, center, 3 * thickness + 2, color, -1)
            cv2.circle(drawing, center, 3 * thickness + 2, (255, 255, 255), thickness)
        return drawing

    def postprocess(self, preds: list, visualization: Optional[list],
                    return_datasample: bool = False, pred_out_dir: str = '') -> dict:
        """Data samples -> ``dict(predictions, visualization)``; masks and scores written to
        ``pred_out_dir`` (``masks/`` PNGs, ``preds/`` JSON) if given."""
        results = []
        for index, pred in enumerate(preds):
            result = self.pred2dict(pred, index)
            if pred_out_dir:
                self.save_pred(result, pred_out_dir)
            results.append(result)
        return dict(predictions=preds if return_datasample else results,
                    visualization=visualization)

    @staticmethod
    def prompts_of(sample: BaseDataElement) -> tuple:
        """The points and boxes of a data sample's N expressions as lists: per expression
        ``[[x, y, label], ...]`` / ``[x1, y1, x2, y2]`` (original pixels) or None."""
        count = len(sample.text)
        coords = sample.get('prompt_points') or [None] * count
        labels = sample.get('prompt_point_labels') or [None] * count
        boxes = sample.get('prompt_boxes') or [None] * count
        points = [None if xy is None else [[float(x), float(y), int(label)] for (x, y), label
                                           in zip(xy.tolist(), lab.tolist())]
                  for xy, lab in zip(coords, labels)]
        return points, [None if b is None else [float(v) for v in b.tolist()] for b in boxes]

    @staticmethod
    def pred2dict(pred: BaseDataElement, index: int = 0) -> dict:
        """A data sample -> ``dict(img_path, stem, texts, masks, scores, points, boxes)``;
        ``texts`` N str or None (no text), ``masks`` (N, H, W) bool at the original size,
        ``scores`` N floats, ``points`` / ``boxes`` per expression as
        :meth:`prompts_of` gives them."""
        points, boxes = TextSegInferencer.prompts_of(pred)
        return dict(img_path=pred.get('img_path'), stem=pred.get('stem', f'{index:08d}'),
                    texts=list(pred.text),
                    masks=pred.pred_instances.masks.cpu().numpy().astype(bool),
                    scores=pred.pred_instances.scores.float().cpu().tolist(),
                    points=points, boxes=boxes)

    @staticmethod
    def save_pred(result: dict, out_dir: str) -> None:
        """``masks/{stem}_{i}.png`` (0 / 255) and ``preds/{stem}.json`` under ``out_dir``."""
        stem, files = result['stem'], []
        for i, mask in enumerate(result['masks']):
            files.append(osp.join('masks', f'{stem}_{i}.png'))
            mmcv.imwrite(mask.astype(np.uint8) * 255, osp.join(out_dir, files[-1]))
        record = dict(img_path=result['img_path'], texts=result['texts'], scores=result['scores'],
                      mask_files=files, points=result.get('points'),
                      boxes=result.get('boxes'))
        os.makedirs(osp.join(out_dir, 'preds'), exist_ok=True)
        with open(osp.join(out_dir, 'preds', f'{stem}.json'), 'w') as f:
            json.dump(record, f, indent=2)
