"""SAM image embeddings computed once per image, or taken from a cache: the on-disk cache
(``LoadCachedEmbedding`` in the pipeline) or an in-memory memo (e.g. the browser demo's LRU)."""
from typing import Callable, Dict, Optional

import torch
from torch import Tensor, nn

from mmevf.utils import embedding_cache

#: An in-memory memo of image embeddings: ``memo(images, encode)`` with (B, 3, S, S) padded
#: images and the image encoder (B, 3, S, S) -> (B, C, h, w) returns their (B, C, h, w)
#: embeddings, running ``encode`` on the images it does not hold.
ImageEmbeddingMemo = Callable[[Tensor, Callable[[Tensor], Tensor]], Tensor]


class EmbeddingCacheMixin:
    """How a SAM-based segmentor gets its image embeddings (:meth:`image_embeddings`): its
    ``image_encoder`` on ``inputs['img']``, unless a cache stands in for it.

    - **On disk** (``tools/cache_embeddings.py``, read by ``LoadCachedEmbedding``): the batch
      carries ``img_embed`` and its cache keys; they are used once the encoder is found frozen
      and the keys equal :meth:`image_embedding_key`.
    - **In memory**: :attr:`image_embedding_memo`, set by whoever owns the model and keeps its
      weights fixed (the browser demo: one encoder pass per image, whatever the prompts).

    The class using it holds ``image_encoder`` (``img_size``, parameters) and a
    ``data_preprocessor`` (``mean``, ``std``, ``bgr_to_rgb``).
    """
    image_encoder: nn.Module

    #: whether SAM's image embedding depends on the image alone, so that a cache of it can
    #: stand in for the image encoder; ``False`` for models that feed the encoder more (DIT
    #: injects the text into it).
    image_embedding_cacheable: bool = True

    #: the in-memory memo :meth:`image_embeddings` consults (``None``: none). It is keyed by
    #: the images alone: set it only while the image encoder's weights stay as they are.
    image_embedding_memo: Optional[ImageEmbeddingMemo] = None

    def image_embeddings(self, inputs: Dict[str, Tensor]) -> Tensor:
        """(B, 3, S, S) padded images ``inputs['img']`` -> (B, 256, S / 16, S / 16) SAM image
        embeddings: the expensive step, run once per image of the batch (through
        :attr:`image_embedding_memo` if one is set).

        With cached embeddings (``inputs['img_embed']`` (B, 256, S / 16, S / 16) and their
        cache keys ``inputs['img_embed_key']`` (B, 32) uint8, from ``LoadCachedEmbedding``),
        the encoder does not run: they are returned in its dtype, once the encoder is found
        frozen and the keys equal :meth:`image_embedding_key` (same weights, input size and
        normalisation); anything else is refused.
        """
        if 'img_embed' not in inputs:
            if self.image_embedding_memo is not None and self.image_embedding_cacheable:
                return self.image_embedding_memo(inputs['img'], self.image_encoder)
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
                'config (and --weights for weights that are not the config\'s)')
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
