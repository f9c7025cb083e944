"""Text-prompted segmentation for people: images + expressions -> masks, as an mmengine
``BaseInferencer`` (``mmevf.apis.TextSegInferencer``; the CLI is ``tools/infer.py``)."""
import json
import math
import os
import os.path as osp
import warnings
from typing import List, Optional, Sequence, Union

import mmcv
import numpy as np
import torch
from mmengine.config import ConfigDict
from mmengine.infer import BaseInferencer
from mmengine.registry import init_default_scope
from rich.progress import track

from mmevf.registry import INFERENCERS, MODELS, TRANSFORMS, VISUALIZERS
from .inference_inputs import (DTYPES, IMAGE_SUFFIXES, ImageType, LoadInferenceImage, TextsType,
                               check_array, dataset_pipeline, load_weights, resolve_config)


@INFERENCERS.register_module()
class TextSegInferencer(BaseInferencer):
    """Segment what expressions describe: ``inferencer(images, texts)``.

    All expressions of an image travel in one data sample, so the model encodes each image
    once (EVF-SAM: one SAM image-encoder pass per image, however many expressions). Works
    with any mmevf segmentor that takes the config's test pipeline and fills
    ``pred_instances.masks`` / ``scores`` in ``mode='predict'``.

    Args:
        model: config file path, or a config name under ``configs/`` (``'evf-tiny_synthref'``).
        weights: checkpoint (mmevf / MMEngine ``.pth``, state dict, ``.safetensors``, or an
            official EVF-SAM folder); ``None`` keeps random weights (with a warning).
        tokenizer: tokenizer folder replacing the one of the pipeline's ``TokenizeText``.
        device: ``'cpu'``, ``'cuda'``, ...; ``None`` picks the available one.
        dtype: ``'float32'`` (default), ``'bfloat16'`` or ``'float16'`` weights and inputs.
        bf16: shortcut for ``dtype='bfloat16'``.
        show_progress: a progress bar over the images.

    Example:
        >>> inferencer = TextSegInferencer('evf-tiny_synthref', weights='tiny.pth')
        >>> out = inferencer('img.jpg', ['the red circle', '[semantic] sky'])
        >>> out['predictions'][0]['masks'].shape  # (2, H, W) bool
    """
    visualize_kwargs = {'return_vis', 'show', 'wait_time', 'img_out_dir'}
    postprocess_kwargs = {'pred_out_dir'}

    def __init__(self,
                 model: str,
                 weights: Optional[str] = None,
                 tokenizer: Optional[str] = None,
                 device: Optional[str] = None,
                 dtype: Union[str, torch.dtype, None] = None,
                 bf16: bool = False,
                 show_progress: bool = True) -> None:
        from mmevf.utils.setup_env import register_all_modules
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
        # holds every parameter.
        model = MODELS.build(cfg.model)
        model.cfg = cfg
        if weights is None:
            warnings.warn('no weights given: the model keeps its random initialisation')
        else:
            load_weights(model, weights, self.config_path or 'the config')
        return model.to(device=device, dtype=self.dtype).eval()

    def _init_pipeline(self, cfg: ConfigDict):
        """The config's test pipeline without its image loading (done by
        :class:`LoadInferenceImage`) and ground-truth loading."""
        steps = cfg.get('test_pipeline') or dataset_pipeline(cfg)
        if not steps:
            raise ValueError('the config has no test pipeline (test_pipeline or '
                             'test_dataloader.dataset.pipeline)')
        transforms = [LoadInferenceImage()]
        tokenized = False
        for step in steps:
            step = dict(step)
            kind = step['type'] if isinstance(step['type'], str) else step['type'].__name__
            if kind.endswith(('LoadImageFromFile', 'LoadImageFromNDArray', 'LoadAnnotations')):
                continue
            if kind.endswith('TokenizeText') and self.tokenizer is not None:
                step['tokenizer'] = str(self.tokenizer)
                tokenized = True
            transforms.append(TRANSFORMS.build(step))
        if self.tokenizer is not None and not tokenized:
            raise ValueError('tokenizer= given, but the test pipeline has no TokenizeText')

        def pipeline(results: dict) -> dict:
            for transform in transforms:
                results = transform(results)
            return results

        return pipeline

    def _init_visualizer(self, cfg: ConfigDict):
        vis_cfg = dict(cfg.get('visualizer') or dict(type='ReferSegVisualizer'))
        vis_cfg.pop('vis_backends', None)  # pictures are returned / written here, not logged
        vis_cfg['name'] = f'text_seg_inferencer_{id(self)}'
        return VISUALIZERS.build(vis_cfg)

    # ------------------------------------------------------------------ inputs
    def pair_inputs(self, inputs: Union[ImageType, Sequence[ImageType]],
                    texts: TextsType) -> List[dict]:
        """Images and expressions -> one item per image with all its expressions.

        ``texts``: for one image, a str or a list of str; for several images, a str (the
        same expression everywhere) or one entry (str or list of str) per image. A folder
        stands for the images in it, each getting every expression of a str / list of str.
        """
        images = self._inputs_to_list(inputs)
        from_dir = isinstance(inputs, str) and osp.isdir(inputs)
        if from_dir:
            images = sorted(p for p in images if p.lower().endswith(IMAGE_SUFFIXES))
        single = not isinstance(inputs, (list, tuple)) and len(images) == 1
        if not images:
            raise ValueError(f'no image in {inputs}' if from_dir else 'no image given')
        if isinstance(texts, str):
            per_image = [[texts]] * len(images)
        elif single or (from_dir and all(isinstance(t, str) for t in texts)):
            per_image = [list(texts)] * len(images)  # every image gets all expressions
        else:
            texts = list(texts)
            if len(texts) != len(images):
                raise ValueError(f'{len(images)} images but {len(texts)} text entries: give '
                                 f'one entry (str or list of str) per image, or one str')
            per_image = [[t] if isinstance(t, str) else list(t) for t in texts]
        items, stems = [], set()
        for i, (image, expressions) in enumerate(zip(images, per_image)):
            name = image if isinstance(image, str) else f'image #{i} (array)'
            if isinstance(image, str):
                if not osp.isfile(image):
                    raise FileNotFoundError(f'image {image} does not exist')
            elif not isinstance(image, np.ndarray):
                raise TypeError(f'image #{i}: expected a path or a numpy array, got '
                                f'{type(image).__name__}')
            if not expressions:
                raise ValueError(f'no expression for {name}')
            for j, text in enumerate(expressions):
                if not isinstance(text, str):
                    raise TypeError(f'expression #{j} for {name} is a {type(text).__name__}, '
                                    f'not a str')
                if not text.strip():
                    raise ValueError(f'empty expression #{j} for {name}')
            stem = osp.splitext(osp.basename(image))[0] if isinstance(image, str) else f'{i:08d}'
            stem = stem if stem not in stems else f'{stem}_{i}'
            stems.add(stem)
            items.append(dict(img=image, name=name, stem=stem, img_id=i,
                              img_path=image if isinstance(image, str) else None,
                              text=list(expressions)))
        return items

    # ------------------------------------------------------------------ running
    def __call__(self,
                 inputs: Union[ImageType, Sequence[ImageType]],
                 texts: TextsType,
                 batch_size: int = 1,
                 return_datasamples: bool = False,
                 return_vis: bool = False,
                 show: bool = False,
                 wait_time: float = 0.,
                 out_dir: str = '') -> dict:
        """Segment ``texts`` in ``inputs`` (see :meth:`pair_inputs` for the forms).

        Args:
            batch_size: images per forward pass (each with all its expressions).
            return_datasamples: return the model's data samples instead of dicts.
            return_vis: also return the drawings, one (H, W, 3) RGB array per expression.
            show: show the drawings in a window.
            out_dir: write ``vis/{stem}_{i}.png`` (overlay with the expression),
                ``masks/{stem}_{i}.png`` (0 / 255) and ``preds/{stem}.json`` there.

        Returns:
            ``dict(predictions=[...], visualization=[...] or None)``, one entry per image:
            ``dict(img_path, texts, masks=(N, H, W) bool array at the original size,
            scores=[N floats])`` and a list of N drawings.
        """
        items = self.pair_inputs(inputs, texts)
        batches = self.preprocess(items, batch_size=batch_size)
        if self.show_progress:
            batches = track(batches, description='Inference',
                            total=math.ceil(len(items) / batch_size))
        preds = []
        for data in batches:
            preds.extend(self.forward(data))
        for pred, item in zip(preds, items):
            pred.set_metainfo(dict(stem=item['stem']))
        img_out_dir = osp.join(out_dir, 'vis') if out_dir else ''
        visualization = self.visualize(items, preds, return_vis=return_vis, show=show,
                                       wait_time=wait_time, img_out_dir=img_out_dir)
        return self.postprocess(preds, visualization, return_datasamples,
                                pred_out_dir=out_dir)

    def forward(self, inputs: dict, **kwargs) -> list:
        with torch.inference_mode():
            return self.model.test_step(inputs)

    def visualize(self, inputs: List[dict], preds: list, return_vis: bool = False,
                  show: bool = False, wait_time: float = 0.,
                  img_out_dir: str = '') -> Optional[List[List[np.ndarray]]]:
        """One drawing per expression: mask over the image, expression on top (RGB)."""
        if not (return_vis or show or img_out_dir):
            return None
        drawings = []
        for item, pred in zip(inputs, preds):
            image = item['img'] if isinstance(item['img'], np.ndarray) else mmcv.imread(
                item['img'])
            image = check_array(image, item['name'])[..., ::-1]  # BGR -> RGB
            masks = pred.pred_instances.masks.cpu().numpy()
            drawn = []
            for i, text in enumerate(pred.text):
                drawing = self.visualizer.draw_expression(image, text, masks[i])
                if show:
                    self.visualizer.show(drawing, win_name=f'{item["name"]}: {text}',
                                         wait_time=wait_time)
                if img_out_dir:
                    mmcv.imwrite(drawing[..., ::-1],
                                 osp.join(img_out_dir, f'{item["stem"]}_{i}.png'))
                drawn.append(drawing)
            drawings.append(drawn if return_vis else None)
        return drawings if return_vis else None

    def postprocess(self, preds: list, visualization: Optional[list],
                    return_datasample: bool = False, pred_out_dir: str = '') -> dict:
        """Data samples -> ``dict(predictions, visualization)``; masks and scores written to
        ``pred_out_dir`` (``masks/`` PNGs, ``preds/`` JSON) if given."""
        results = []
        for index, pred in enumerate(preds):
            result = dict(img_path=pred.get('img_path'), stem=pred.get('stem', f'{index:08d}'),
                          texts=list(pred.text),
                          masks=pred.pred_instances.masks.cpu().numpy().astype(bool),
                          scores=pred.pred_instances.scores.float().cpu().tolist())
            if pred_out_dir:
                self._write(result, pred_out_dir)
            results.append(result)
        return dict(predictions=preds if return_datasample else results,
                    visualization=visualization)

    @staticmethod
    def _write(result: dict, out_dir: str) -> None:
        stem, files = result['stem'], []
        for i, mask in enumerate(result['masks']):
            files.append(osp.join('masks', f'{stem}_{i}.png'))
            mmcv.imwrite(mask.astype(np.uint8) * 255, osp.join(out_dir, files[-1]))
        record = dict(img_path=result['img_path'], texts=result['texts'], scores=result['scores'],
                      mask_files=files)
        os.makedirs(osp.join(out_dir, 'preds'), exist_ok=True)
        with open(osp.join(out_dir, 'preds', f'{stem}.json'), 'w') as f:
            json.dump(record, f, indent=2)
