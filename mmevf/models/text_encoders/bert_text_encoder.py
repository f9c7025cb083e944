"""BERT text encoder for DIT (``transformers`` ``BertModel``)."""
from contextlib import nullcontext
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule, initialize
from torch import Tensor
from transformers import BertConfig, BertModel

from mmevf.checkpoint import pretrained_init_cfg
from mmevf.registry import MODELS


@MODELS.register_module()
class BertTextEncoder(BaseModule):
    """Token ids -> features of one BERT layer, with the padding mask passed on.

    Args:
        config: ``BertConfig`` arguments of the architecture; the defaults (``{}``) are
            ``bert-base-uncased`` (12 layers, 768 wide, 30522 words). Tiny test / SynthRef
            models give e.g. ``dict(hidden_size=64, num_hidden_layers=2, ...)``.
        pretrained: a local folder holding a ``transformers`` BERT (``config.json`` and
            ``model.safetensors`` / ``pytorch_model.bin``, e.g. ``bert-base-uncased``; never
            from the hub), the older spelling of ``init_cfg=dict(type='StrictPretrained',
            checkpoint=..., layout='bert', prefix='text_encoder.')``; ``None``: random weights.
        output_layer: which hidden state is returned: 0 the embeddings, k the output of layer k.
            The paper uses the last layer (12 for BERT-base); the released DIT code uses 1.
        frozen: no gradients, eval mode (no dropout), forward under ``torch.no_grad()``.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 config: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 output_layer: int = 12,
                 frozen: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            init_cfg=pretrained_init_cfg(pretrained, init_cfg, 'bert', 'text_encoder.'))
        # transformers draws BERT's own initialisation here (std 0.02, LayerNorm 1 / 0).
        self.bert = BertModel(BertConfig(**(config or {})))
        num_layers = self.bert.config.num_hidden_layers
        if not 0 <= output_layer <= num_layers:
            raise ValueError(f'output_layer must be in [0, {num_layers}], got {output_layer}')
        self.output_layer = output_layer
        self.embed_dims = self.bert.config.hidden_size
        self.frozen = frozen
        if frozen:
            self.requires_grad_(False)
            self.train(False)

    def unused_parameter_prefixes(self) -> Tuple[str, ...]:
        """Parameters that never reach the output: the pooler and the layers after
        ``output_layer`` (with ``output_layer=1`` the released code's layers 2-12)."""
        layers = range(self.output_layer, self.bert.config.num_hidden_layers)
        return ('bert.pooler.', ) + tuple(f'bert.encoder.layer.{i}.' for i in layers)

    def init_weights(self) -> None:
        """Apply ``init_cfg`` to this module only: mmengine's recursion would call
        ``PreTrainedModel.init_weights`` and redraw BERT's weights."""
        if not self.is_init and self.init_cfg:
            initialize(self, self.init_cfg)
        self._is_init = True

    def train(self, mode: bool = True) -> 'BertTextEncoder':
        """A frozen encoder stays in eval mode whatever ``mode`` is."""
        return super().train(mode and not self.frozen)

    def forward(self, text_ids: Tensor,
                text_padding_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Encode N token sequences.

        Args:
            text_ids: (N, L) token ids ([CLS] ... [SEP] [PAD] ...).
            text_padding_mask: (N, L) bool, True at padding, or ``None`` (no padding).

        Returns:
            (N, L, C) features of ``output_layer`` and the (N, L) bool padding mask.
        """
        if text_padding_mask is None:
            text_padding_mask = torch.zeros_like(text_ids, dtype=torch.bool)
        with torch.no_grad() if self.frozen else nullcontext():
            out = self.bert(input_ids=text_ids, attention_mask=(~text_padding_mask).long(),
                            output_hidden_states=True)
        return out.hidden_states[self.output_layer], text_padding_mask
