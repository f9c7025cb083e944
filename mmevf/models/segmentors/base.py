"""What every SAM-based mmevf segmentor shares: geometry, trainable parts, masks at the original
size, the loss and the predictions."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from torch import Tensor

from mmevf.checkpoint import init_weights_pretrained_last
from mmevf.registry import MODELS
from mmevf.utils import embedding_cache

LowResOutput = Tuple[Tensor, Tensor]  # (N_i, 1, 4h, 4w) mask logits, (N_i, 1) predicted IoU


class BaseSAMSegmentor(BaseModel):
    """Base of the segmentors built around SAM (``EVFSAM``, ``DITSam``, ``SAMPretrainer``).

    A subclass builds ``self.image_encoder`` and ``self.prompt_head`` (through
    :meth:`build_sam`) and implements :meth:`decode_batch`; this class turns its
    low-resolution output into masks at the original image size, the BCE + dice loss and
    ``pred_instances``, identically for every method, so that data pipeline, metric, runners
    and inferencer work with all of them.

    Geometry comes from the image encoder alone: its ``img_size`` S is the padded input side
    (the data preprocessor's ``pad_size``) and the prompt head's ``input_image_size``; its
    output grid S / patch is the head's ``image_embedding_size``. Changing SAM's input size is
    one edit (the encoder's ``img_size``, and ``SAMResize(sam_size)`` in the data pipeline,
    which the data preprocessor checks against it).

    A frozen image encoder's embeddings can come from a cache instead (``LoadCachedEmbedding``
    in the pipeline, see :meth:`image_embeddings`).
    """

    #: whether SAM's image embedding depends on the image alone, so that a cache of it can
    #: stand in for the image encoder; ``False`` for models that feed the encoder more (DIT
    #: injects the text into it).
    image_embedding_cacheable: bool = True

    def __init__(self, data_preprocessor: Union[dict, torch.nn.Module],
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)

    def build_sam(self, image_encoder: dict, prompt_head: dict) -> None:
        """Build ``image_encoder`` and ``prompt_head`` with the head's (and the data
        preprocessor's) sizes derived from the encoder."""
        self.image_encoder = MODELS.build(image_encoder)
        side = int(self.image_encoder.img_size)
        grid = side // int(self.image_encoder.patch_size)
        prompt_head = dict(prompt_head)
        for key, value in (('input_image_size', side), ('image_embedding_size', grid)):
            if prompt_head.setdefault(key, value) != value:
                raise ValueError(f'prompt_head.{key}={prompt_head[key]} disagrees with the image '
                                 f'encoder ({value}); leave it out, it is derived')
        self.prompt_head = MODELS.build(prompt_head)
        if getattr(self.data_preprocessor, 'pad_size', side) is None:
            self.data_preprocessor.pad_size = side
        elif getattr(self.data_preprocessor, 'pad_size', side) != side:
            raise ValueError(f'data_preprocessor.pad_size={self.data_preprocessor.pad_size} '
                             f'disagrees with the image encoder img_size={side}; leave it out')

    def init_weights(self) -> None:
        """mmengine's ``init_weights``; a ``StrictPretrained`` entry of this model's
        ``init_cfg`` (a whole checkpoint) is applied after the parts initialise themselves."""
        init_weights_pretrained_last(self)

    def set_trainable(self, trainable: Sequence[str], frozen_modules: Sequence[str] = (),
                      always_frozen: Sequence[str] = ()) -> None:
        """Train exactly the parameters whose names start with a ``trainable`` prefix (and not
        with an ``always_frozen`` one). Every prefix must name parameters, and none may name a
        module in ``frozen_modules`` that was built with ``frozen=True``."""
        trainable, always_frozen = tuple(trainable), tuple(always_frozen)
        names = [name for name, _ in self.named_parameters()]
        for prefix in trainable:
            if not any(name.startswith(prefix) for name in names):
                raise ValueError(f'trainable prefix {prefix!r} matches no parameter')
        for module in frozen_modules:
            if getattr(getattr(self, module), 'frozen', False) and any(
                    p.startswith(module) for p in trainable):
                raise ValueError(f'{module} is listed as trainable but built with frozen=True')
        for name, param in self.named_parameters():
            param.requires_grad_(name.startswith(trainable) and not name.startswith(always_frozen))

    def image_embeddings(self, inputs: Dict[str, Tensor]) -> Tensor:
        """(B, 3, S, S) padded images ``inputs['img']`` -> (B, 256, S / 16, S / 16) SAM image
        embeddings: the expensive step, run once per image of the batch.

        With cached embeddings (``inputs['img_embed']`` (B, 256, S / 16, S / 16) and their
        cache keys ``inputs['img_embed_key']`` (B, 32) uint8, from ``LoadCachedEmbedding``),
        the encoder does not run: they are returned in its dtype, once the encoder is found
        frozen and the keys equal :meth:`image_embedding_key` (same weights, input size and
        normalisation); anything else is refused.
        """
        if 'img_embed' not in inputs:
            return self.image_encoder(inputs['img'])
        self.check_cacheable()
        key = self.image_embedding_key()
        expected = torch.tensor(list(bytes.fromhex(key)), dtype=torch.uint8,
                                device=inputs['img_embed_key'].device)
        stale = (inputs['img_embed_key'] != expected).any(1).nonzero()[:, 0].tolist()
        if stale:
            cached = bytes(inputs['img_embed_key'][stale[0]].tolist()).hex()
            raise embedding_cache.StaleEmbeddingCacheError(
                f'images {stale} of the batch have embeddings cached for another image encoder '
                f'(weights, input size or normalisation; cache key {cached}) than this model\'s '
                f'(key {key}): write the cache again with tools/cache_embeddings.py for this '
                'config (and --checkpoint for weights that are not the config\'s)')
        return inputs['img_embed'].to(next(self.image_encoder.parameters()).dtype)

    def check_cacheable(self) -> None:
        """Raise unless a cache may stand in for the image encoder: the embedding depends on
        the image alone and the encoder never changes (no trainable parameter, eval mode)."""
        name = type(self).__name__
        if not self.image_embedding_cacheable:
            raise ValueError(f'{name} cannot use cached image embeddings: its image encoder '
                             'reads more than the image')
        trainable = [n for n, p in self.image_encoder.named_parameters() if p.requires_grad]
        # training mode counts too: e.g. BatchNorm statistics move without any gradient
        if trainable or self.image_encoder.training:
            what = (f'image_encoder.{trainable[0]} trains' if trainable else
                    'image_encoder is in training mode')
            raise ValueError(
                f'{name}: cached image embeddings need a frozen image encoder, but {what}: '
                'its embeddings would change as it trains. Build it with frozen=True and '
                "leave 'image_encoder' out of trainable, or train without the cache")

    def image_embedding_key_parts(self) -> dict:
        """What shapes this model's image embeddings besides the pixels (see
        :func:`mmevf.utils.embedding_cache.key_parts`)."""
        preprocessor = self.data_preprocessor
        return embedding_cache.key_parts(
            self.image_encoder, int(self.image_encoder.img_size),
            preprocessor.mean.flatten().tolist(), preprocessor.std.flatten().tolist(),
            preprocessor.bgr_to_rgb)

    def image_embedding_key(self) -> str:
        """The cache key of this model's image embeddings (64 hex digits), recomputed only
        when a weight of the encoder changes (a tensor's version counter moves on every
        in-place write, e.g. a checkpoint load)."""
        preprocessor = self.data_preprocessor
        stamp = (tuple((t.data_ptr(), t._version)
                       for t in self.image_encoder.state_dict(keep_vars=True).values()),
                 tuple(preprocessor.mean.flatten().tolist()),
                 tuple(preprocessor.std.flatten().tolist()), preprocessor.bgr_to_rgb)
        memo = getattr(self, '_image_embedding_key', None)
        if memo is None or memo[0] != stamp:
            memo = (stamp, embedding_cache.cache_key(self.image_embedding_key_parts()))
            self._image_embedding_key = memo
        return memo[1]

    # ------------------------------------------------------------------ outputs
    def decode_batch(self, inputs: Dict[str, Tensor], data_samples: Optional[list]
                     ) -> List[LowResOutput]:
        """Low-resolution mask logits and IoU predictions, one entry per image."""
        raise NotImplementedError

    def mask_logits(self, inputs: Dict[str, Tensor],
                    data_samples: list) -> List[Tuple[Tensor, Tensor]]:
        """Per image: mask logits at the original size (N_i, H, W) and IoU scores (N_i,)."""
        results = []
        for (low_res, iou), sample in zip(self.decode_batch(inputs, data_samples), data_samples):
            logits = self.prompt_head.postprocess_masks(
                low_res, sample.img_shape, sample.ori_shape)
            results.append((logits[:, 0], iou[:, 0]))
        return results

    def forward(self,
                inputs: Dict[str, Tensor],
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """``loss`` / ``predict`` as every MMEngine model; ``tensor``: :meth:`decode_batch`.

        Floating inputs are cast to the dtype of the model's weights first (DeepSpeed bf16
        casts parameters, not the data preprocessor's buffers)."""
        dtype = next(self.parameters()).dtype
        inputs = {k: v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v
                  for k, v in inputs.items()}
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.decode_batch(inputs, data_samples)
        raise ValueError(f'invalid mode {mode!r}: use "loss", "predict" or "tensor"')

    def loss(self, inputs: Dict[str, Tensor], data_samples: list) -> Dict[str, Tensor]:
        """The prompt head's mask losses (BCE + dice) at the original image size, averaged
        over all masks of the batch."""
        losses: Dict[str, Tensor] = {}
        total = 0
        for (logits, _), sample in zip(self.mask_logits(inputs, data_samples), data_samples):
            gt = sample.gt_instances.masks.to_tensor(logits.dtype, logits.device)
            if gt.shape != logits.shape:
                raise ValueError(f'{sample.img_path}: {gt.shape[0]} ground-truth masks of size '
                                 f'{tuple(gt.shape[1:])} for {logits.shape[0]} predictions')
            for name, value in self.prompt_head.loss(logits, gt).items():
                losses[name] = losses.get(name, 0) + value * len(gt)
            total += len(gt)
        return {name: value / total for name, value in losses.items()}

    def predict(self, inputs: Dict[str, Tensor], data_samples: list) -> list:
        """Adds ``pred_instances`` (one bool mask per prompt at the original size, plus the
        predicted IoU as ``scores``) to every data sample."""
        threshold = self.prompt_head.mask_threshold
        for (logits, scores), sample in zip(self.mask_logits(inputs, data_samples),
                                            data_samples):
            sample.pred_instances = InstanceData(masks=logits > threshold, scores=scores.float())
        return data_samples
