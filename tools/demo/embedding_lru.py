"""The demo's in-memory LRU of SAM image embeddings (not to be confused with
:mod:`mmevf.utils.embedding_cache`, the cache on disk that training reads)."""
import hashlib
import threading
from collections import OrderedDict
from typing import Callable, List

import torch
from torch import Tensor


class ImageEmbeddingLRU:
    """The image embeddings of the last ``size`` images seen, so that a user trying
    expressions, points or boxes on one image pays for SAM's image encoder once.

    It is the segmentor's ``image_embedding_memo``
    (:class:`~mmevf.models.segmentors.embedding_cache_mixin.EmbeddingCacheMixin`): called with a
    batch of (B, 3, S, S) normalised, padded images and the image encoder, it returns their
    (B, C, h, w) embeddings, encoding only the images it does not hold, in one batch (an image
    twice in a batch is encoded once). Each image is keyed by the SHA-256 of its padded input
    tensor (bytes, shape, dtype, device): the same upload, the same example or the same pixels
    sent again hit the cache whatever else the request changes (expressions, ``[semantic]``,
    points, boxes). One entry of the tiny model is 64 KiB, of SAM-H 4 MiB; ``size=0`` keeps
    none. The encoder's weights are taken as fixed (the demo never changes them).

    ``misses`` counts the images encoded, ``hits`` those served without the encoder;
    ``encoder_runs`` counts the encoder's calls.
    """

    def __init__(self, size: int = 8) -> None:
        self.size = int(size)
        self.entries: 'OrderedDict[str, Tensor]' = OrderedDict()
        self.hits = self.misses = self.encoder_runs = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(image: Tensor) -> str:
        """SHA-256 of one padded input image (a (3, S, S) tensor) with its shape and dtype."""
        data = image.detach().cpu().contiguous()
        digest = hashlib.sha256(f'{tuple(data.shape)}|{data.dtype}|{image.device}|'.encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    def __call__(self, images: Tensor, encode: Callable[[Tensor], Tensor]) -> Tensor:
        """(B, 3, S, S) images -> (B, C, h, w) embeddings, ``encode`` run on the misses."""
        if self.size <= 0:
            self.encoder_runs += 1
            return encode(images)
        keys = [self.key(image) for image in images]
        with self._lock:
            found = {k: self.entries[k] for k in keys if k in self.entries}
            for k in found:
                self.entries.move_to_end(k)
        # the first occurrence of each image not cached: a batch holding one twice encodes it once
        first: List[int] = []
        for i, k in enumerate(keys):
            if k not in found and all(keys[j] != k for j in first):
                first.append(i)
        self.hits += len(keys) - len(first)
        self.misses += len(first)
        if first:
            computed = encode(images[first])
            self.encoder_runs += 1
            with self._lock:
                for j, i in enumerate(first):
                    found[keys[i]] = computed[j:j + 1].detach()
                    self.entries[keys[i]] = found[keys[i]]
                    self.entries.move_to_end(keys[i])
                while len(self.entries) > self.size:
                    self.entries.popitem(last=False)
        return torch.cat([found[k] for k in keys])

    def stats(self) -> dict:
        return dict(size=self.size, entries=len(self.entries), hits=self.hits,
                    misses=self.misses, encoder_runs=self.encoder_runs)
