"""``TextSegInferencer`` on an ONNX export (``tools/deployment/export_onnx.py``), run by ONNX
Runtime: ``TextSegInferencer(DIR, backend='onnxruntime')`` builds an
:class:`OnnxTextSegInferencer`.

Everything but the model is the PyTorch inferencer's: inputs pairing and checks
(:func:`~mmevf.apis.input_pairing.pair_inputs`), image loading (mmdet's ``InferencerLoader``,
so an undecodable file fails with the same message), points / boxes on the data samples,
drawing, ``pred2dict`` / ``save_pred`` and the error messages. The model is
:class:`~mmevf.deploy.onnx_predictor.OnnxEVFSAM`: the export's own numpy pre- and
post-processing (resize, normalisation, tokenizer, threshold), as the folder runs on its own.
"""
from typing import Optional

import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import ConfigDict
from mmengine.infer import BaseInferencer
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from mmevf.deploy.onnx_predictor import PRECISIONS, OnnxEVFSAM, read_deploy
from mmevf.registry import INFERENCERS
from .text_seg_inferencer import TextSegInferencer


@INFERENCERS.register_module()
class OnnxTextSegInferencer(TextSegInferencer):
    """:class:`TextSegInferencer` with the model of an ONNX export folder.

    Args:
        model: the export folder (``deploy.json``, the graphs, the tokenizer).
        weights: must be ``None`` (the folder holds the weights).
        tokenizer: a tokenizer folder replacing the export's copy.
        device: ``None`` / ``'cpu'`` (ONNX Runtime's CPU provider), or ``'cuda'`` where
            ``onnxruntime-gpu`` provides CUDA.
        dtype: ``'fp32'`` (default), or ``'int8'`` for the quantised encoders (an export made
            with ``--int8``; the decoder is fp32 in both).
        show_progress: a progress bar over the batches.
        backend: ``'onnxruntime'``.

    ONNX Runtime runs each graph on ``torch.get_num_threads()`` threads, the PyTorch
    backend's count in this process.
    """

    def __init__(self,
                 model: str,
                 weights: Optional[str] = None,
                 tokenizer: Optional[str] = None,
                 device: Optional[str] = None,
                 dtype: str = 'fp32',
                 show_progress: bool = True,
                 *,
                 backend: str = 'onnxruntime') -> None:
        if backend != 'onnxruntime':
            raise ValueError(f'{type(self).__name__} runs the onnxruntime backend, not '
                             f'{backend!r}')
        if not isinstance(model, str):
            raise TypeError(f'backend=\'onnxruntime\' takes the export folder as model, got '
                            f'{type(model).__name__}')
        if weights is not None:
            raise ValueError(f'weights= is for the pytorch backend: the export folder {model} '
                             f'holds the weights')
        if dtype not in PRECISIONS:
            raise ValueError(f'backend=\'onnxruntime\' takes dtype in {PRECISIONS}, got '
                             f'{dtype!r}')
        from mmevf.engine.runner_setup import register_all_modules
        register_all_modules(init_scope=False)
        init_default_scope('mmevf')
        self.backend = backend
        self.dtype = dtype
        self.tokenizer = tokenizer
        self.config_path = None
        self.model_dir = model
        deploy = read_deploy(model)  # a folder without deploy.json fails here, by name
        cfg = ConfigDict(visualizer=deploy.get('visualizer') or dict(type='ReferSegVisualizer'))
        BaseInferencer.__init__(self, cfg, None, device or 'cpu', 'mmevf', show_progress)

    # ------------------------------------------------------------------ building
    def _init_model(self, cfg: ConfigDict, weights: Optional[str],
                    device: str = 'cpu') -> OnnxEVFSAM:
        if device == 'cpu':
            providers = ['CPUExecutionProvider']
        elif str(device).startswith('cuda'):
            providers = ['CUDAExecutionProvider', 'CPUExecutionProvider']
        else:
            raise ValueError(f'backend=\'onnxruntime\' runs on cpu or cuda, not {device!r}')
        return OnnxEVFSAM(self.model_dir, self.dtype, providers=providers,
                          threads=torch.get_num_threads(), tokenizer=self.tokenizer)

    def _init_pipeline(self, cfg: ConfigDict) -> Compose:
        """The PyTorch pipeline's image loading and packing; resizing, normalisation and
        tokenisation are the export's (:class:`~mmevf.deploy.onnx_predictor.OnnxEVFSAM`)."""
        return Compose([dict(type='mmdet.InferencerLoader'), dict(type='PackReferInputs')])

    # ------------------------------------------------------------------ running
    def forward(self, inputs: dict, **kwargs) -> list:
        """Each image with all its expressions through the export; ``pred_instances`` as the
        PyTorch model's ``predict`` sets them (masks, scores; no-target flags and scores for a
        model with a no-target head)."""
        samples, batch = inputs['data_samples'], inputs['inputs']
        # pseudo_collate gives dict(img=[...]); a list of per-image dicts is taken too
        images = batch['img'] if isinstance(batch, dict) else [item['img'] for item in batch]
        for image, sample in zip(images, samples):
            image = image.permute(1, 2, 0).numpy()  # back to (H, W, 3) BGR
            count = len(sample.text)
            coords, labels, boxes = (sample.get(field) or [None] * count for field in (
                'prompt_points', 'prompt_point_labels', 'prompt_boxes'))
            points = [None if xy is None else np.concatenate(
                [xy.numpy(), label.numpy()[:, None].astype(np.float64)], axis=1)
                for xy, label in zip(coords, labels)]
            result = self.model.predict(image, list(sample.text), points,
                                        [None if b is None else b.numpy() for b in boxes])
            instances = InstanceData(masks=torch.from_numpy(result['masks']),
                                     scores=torch.from_numpy(result['scores']))
            if 'no_target' in result:
                instances.no_target = torch.from_numpy(result['no_target'])
                instances.no_target_scores = torch.from_numpy(result['no_target_scores'])
            sample.pred_instances = instances
        return samples
