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
from mmevf.models.segmentors.text_prompt_segmentor import GEOMETRIC_FIELDS
from mmevf.registry import INFERENCERS, MODELS
from mmevf.utils import resolve_dtype
from .inference_inputs import ImageType, TextsType, dataset_pipeline, resolve_config
from .input_pairing import pair_inputs
from .sample_prompts import attach_prompts, describe_prompt, prompts_of

# Pipeline steps replaced or dropped at inference (matched on the end of the type name, so
# 'mmdet.LoadAnnotations' and 'LoadAnnotations' both count).
IMAGE_LOADERS = ('LoadImageFromFile', 'LoadImageFromNDArray', 'InferencerLoader')
ANNOTATION_LOADERS = ('LoadAnnotations', )
# what a model with a no-target head adds to a prediction dict (pred2dict) and its JSON
NO_TARGET_KEYS = ('no_target', 'no_target_scores')
# what runs the model: mmevf's PyTorch model, or an ONNX export run by ONNX Runtime
BACKENDS = ('pytorch', 'onnxruntime')


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
        dtype: weights and inputs in ``'fp32'`` (default), ``'bf16'`` or ``'fp16'`` (or that
            torch dtype).
        show_progress: a progress bar over the batches.
        backend: ``'pytorch'`` (default), or ``'onnxruntime'``: ``model`` is then the folder of
            an ONNX export (``tools/deployment/export_onnx.py``), run by ONNX Runtime through
            :class:`~mmevf.apis.onnx_inferencer.OnnxTextSegInferencer` (same inputs, outputs,
            drawings and errors; ``weights`` unset, ``dtype`` ``'fp32'`` or ``'int8'``).

    An expression may add points and a box to its text, or have no text (``None``): SAM is
    then prompted by the points / box alone (models that support it: EVF-SAM).

    A model with a no-target head (``model.no_target_head=dict(type='NoTargetHead')``, for
    generalized referring: an expression may name nothing) also says, per expression, whether
    it names nothing and with what probability (``no_target`` / ``no_target_scores`` in the
    predictions and their JSON); such an expression's mask is empty, and its drawing says
    "no target (score 0.93)".

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

    def __new__(cls, *args, backend: str = 'pytorch', **kwargs) -> 'TextSegInferencer':
        """``backend='onnxruntime'`` makes an ``OnnxTextSegInferencer`` (a subclass)."""
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
        if backend == 'onnxruntime' and cls is TextSegInferencer:
            from .onnx_inferencer import OnnxTextSegInferencer
            cls = OnnxTextSegInferencer
        return super().__new__(cls)

    def __init__(self,
                 model: str,
                 weights: Optional[str] = None,
                 tokenizer: Optional[str] = None,
                 device: Optional[str] = None,
                 dtype: Union[str, torch.dtype] = 'fp32',
                 show_progress: bool = True,
                 *,
                 backend: str = 'pytorch') -> None:
        self.backend = backend
        from mmevf.engine.runner_setup import register_all_modules
        register_all_modules(init_scope=False)
        init_default_scope('mmevf')
        self.dtype = resolve_dtype(dtype)
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
    def _load(self, item: dict) -> dict:
        """One item of :func:`~mmevf.apis.input_pairing.pair_inputs` through the pipeline ->
        ``dict(inputs, data_samples)``; a file that does not decode is named. Points and boxes
        are attached to the packed sample (:func:`~mmevf.apis.sample_prompts.attach_prompts`).
        """
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
            attach_prompts(packed['data_samples'], item)
        return packed

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
        """Segment ``texts`` in ``inputs`` (see :func:`~mmevf.apis.input_pairing.pair_inputs`
        for the forms).

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
            scores=[N floats], points, boxes)`` (see :meth:`pred2dict`; a model with a
            no-target head adds ``no_target`` / ``no_target_scores``) and a list of N
            drawings (a no-target expression's labelled "no target (score ...)").
        """
        items = pair_inputs(inputs, texts, points, boxes)
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
        """Items of :func:`~mmevf.apis.input_pairing.pair_inputs` -> collated batches of
        ``batch_size`` images, each ``dict(inputs=[...], data_samples=[...])`` as
        ``model.test_step`` takes them."""
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
        foreground points green, background red, the box yellow), or for an expression a
        no-target head says names nothing a "no target (score 0.93)" label instead of the
        (empty) mask; written as ``img_out_dir/{stem}_{i}.png``.

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
            points, boxes = prompts_of(pred)
            for i, text in enumerate(pred.text):
                # One expression per call, so that `get_image()` (the last drawing, as in
                # DetInferencer) is this expression's picture; its prompts go along.
                caption = describe_prompt(text, points[i], boxes[i])
                prompts = {field: pred.get(field)[i:i + 1] for field in GEOMETRIC_FIELDS
                           if field in pred}
                single = pred.new(metainfo=dict(text=[caption]),
                                  pred_instances=pred.pred_instances[i:i + 1], **prompts)
                self.visualizer.add_datasample(item['name'], image, single, draw_gt=False,
                                               show=show, wait_time=wait_time)
                drawing = self.visualizer.get_image()
                if img_out_dir:
                    mmcv.imwrite(drawing[..., ::-1],
                                 osp.join(img_out_dir, f'{item["stem"]}_{i}.png'))
                drawn.append(drawing)
            drawings.append(drawn)
        return drawings if return_vis else None

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
    def pred2dict(pred: BaseDataElement, index: int = 0) -> dict:
        """A data sample -> ``dict(img_path, stem, texts, masks, scores, points, boxes)``;
        ``texts`` N str or None (no text), ``masks`` (N, H, W) bool at the original size,
        ``scores`` N floats, ``points`` / ``boxes`` per expression as
        :func:`~mmevf.apis.sample_prompts.prompts_of` gives them.

        A model with a no-target head (``model.no_target_head``) adds ``no_target`` (N bools:
        the expression names nothing in the image, its mask is empty) and
        ``no_target_scores`` (N floats, the no-target probabilities); a model without one
        gives exactly the keys above."""
        points, boxes = prompts_of(pred)
        instances = pred.pred_instances
        result = dict(img_path=pred.get('img_path'), stem=pred.get('stem', f'{index:08d}'),
                      texts=list(pred.text), masks=instances.masks.cpu().numpy().astype(bool),
                      scores=instances.scores.float().cpu().tolist(), points=points,
                      boxes=boxes)
        if 'no_target' in instances:
            result.update(no_target=[bool(v) for v in instances.no_target.cpu().tolist()],
                          no_target_scores=instances.no_target_scores.float().cpu().tolist())
        return result

    @staticmethod
    def save_pred(result: dict, out_dir: str) -> None:
        """``masks/{stem}_{i}.png`` (0 / 255; all 0 for an expression without target) and
        ``preds/{stem}.json`` under ``out_dir``; the JSON has ``no_target`` /
        ``no_target_scores`` when the result has them (:meth:`pred2dict`)."""
        stem, files = result['stem'], []
        for i, mask in enumerate(result['masks']):
            files.append(osp.join('masks', f'{stem}_{i}.png'))
            mmcv.imwrite(mask.astype(np.uint8) * 255, osp.join(out_dir, files[-1]))
        record = dict(img_path=result['img_path'], texts=result['texts'], scores=result['scores'],
                      mask_files=files, points=result.get('points'),
                      boxes=result.get('boxes'))
        record.update({key: result[key] for key in NO_TARGET_KEYS if key in result})
        os.makedirs(osp.join(out_dir, 'preds'), exist_ok=True)
        with open(osp.join(out_dir, 'preds', f'{stem}.json'), 'w') as f:
            json.dump(record, f, indent=2)
