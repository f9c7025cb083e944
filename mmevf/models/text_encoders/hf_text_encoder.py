"""Any ``transformers`` text encoder (``AutoModel``) for DIT: BERT by default, or RoBERTa,
DistilBERT, XLM-R ... by config."""
from contextlib import nullcontext
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule, initialize
from torch import Tensor, nn
from transformers import AutoConfig, AutoModel

from mmevf.checkpoint.hf_model import (ConfigLike, has_hf_config, load_hf_weights,
                                       resolve_hf_config)
from mmevf.registry import MODELS


@MODELS.register_module()
class HFTextEncoder(BaseModule):
    """Token ids -> features of one layer of a ``transformers`` encoder, with the padding mask
    passed on (:class:`BertTextEncoder` is this class with a BERT under ``bert.*``, the keys of
    DIT's checkpoints; here they are ``model.*``).

    The model is ``AutoModel`` for the configured type, run with ``attention_mask`` = not
    padding and ``output_hidden_states=True``. Meant for BERT-like encoders whose
    ``hidden_states`` are the embeddings followed by one entry per layer (BERT, RoBERTa,
    XLM-R, DistilBERT, ELECTRA ...). Set ``SAMDataPreprocessor(pad_token_id=...)`` to the
    tokenizer's padding id (BERT 0, RoBERTa 1): RoBERTa numbers positions by it.

    Args:
        config: the architecture: a dict with ``model_type`` (default: the folder's, else
            ``'bert'``) and that type's config arguments, or a config object; ``None``:
            ``pretrained``'s ``config.json``, or ``bert-base-uncased``'s architecture without
            a folder. See :mod:`mmevf.checkpoint.hf_model` for how it meets
            ``pretrained``.
        pretrained: a local ``transformers`` folder (``save_pretrained``), loaded by
            ``from_pretrained`` in :meth:`init_weights`; ``None``: random weights.
        output_layer: which hidden state is returned: 0 the embeddings, k the output of layer
            k; ``None``: the last layer.
        frozen: no gradients, eval mode (no dropout), forward under ``torch.no_grad()``.
        init_cfg: mmengine init config, applied before the ``pretrained`` weights.
    """
    #: the attribute holding the transformers model, the prefix of its parameters
    model_attr = 'model'

    def __init__(self,
                 config: ConfigLike = None,
                 pretrained: Optional[str] = None,
                 output_layer: Optional[int] = None,
                 frozen: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if config is None and pretrained is None:
            config = {}
        if isinstance(config, dict) and 'model_type' not in config and not has_hf_config(
                pretrained):  # BERT by default; a folder names its own type
            config = dict(config, model_type='bert')
        self.pretrained = pretrained
        # transformers draws the model's own initialisation here (BERT: std 0.02, LayerNorm 1 / 0)
        model = AutoModel.from_config(resolve_hf_config(AutoConfig, config, pretrained))
        setattr(self, self.model_attr, model)
        self.num_layers = model.config.num_hidden_layers
        output_layer = self.num_layers if output_layer is None else output_layer
        if not 0 <= output_layer <= self.num_layers:
            raise ValueError(f'output_layer must be in [0, {self.num_layers}], got {output_layer}')
        self.output_layer = output_layer
        self.embed_dims = model.config.hidden_size
        self.frozen = frozen
        if frozen:
            self.requires_grad_(False)
            self.train(False)

    @property
    def text_model(self) -> nn.Module:
        """The ``transformers`` model (held under :attr:`model_attr`)."""
        return getattr(self, self.model_attr)

    def _layers_path(self) -> Optional[str]:
        """Name of the model's list of layers (``encoder.layer``, ``transformer.layer`` ...)."""
        for name, module in self.text_model.named_modules():
            if isinstance(module, nn.ModuleList) and len(module) == self.num_layers:
                return name
        return None

    def unused_parameter_prefixes(self) -> Tuple[str, ...]:
        """Parameters that never reach the output: a pooler and the layers after
        ``output_layer``."""
        prefix = self.model_attr
        unused = tuple(f'{prefix}.{name}.' for name, _ in self.text_model.named_children()
                       if name == 'pooler')
        path = self._layers_path()
        if path is not None:
            unused += tuple(f'{prefix}.{path}.{i}.' for i in range(self.output_layer,
                                                                 self.num_layers))
        return unused

    def init_weights(self) -> None:
        """``init_cfg``, then the ``pretrained`` folder; mmengine's recursion is not used, it
        would call ``PreTrainedModel.init_weights`` and redraw the weights."""
        if self.is_init:
            return
        if self.init_cfg:
            initialize(self, self.init_cfg)
        if self.pretrained is not None:
            load_hf_weights(self.text_model, self.pretrained)
        self._is_init = True

    def train(self, mode: bool = True) -> 'HFTextEncoder':
        """A frozen encoder stays in eval mode whatever ``mode`` is."""
        return super().train(mode and not self.frozen)

    def forward(self, text_ids: Tensor,
                text_padding_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Encode N token sequences.

        Args:
            text_ids: (N, L) token ids of the model's tokenizer.
            text_padding_mask: (N, L) bool, True at padding, or ``None`` (no padding).

        Returns:
            (N, L, C) features of ``output_layer`` and the (N, L) bool padding mask.
        """
        if text_padding_mask is None:
            text_padding_mask = torch.zeros_like(text_ids, dtype=torch.bool)
        with torch.no_grad() if self.frozen else nullcontext():
            out = self.text_model(input_ids=text_ids,
                                  attention_mask=(~text_padding_mask).long(),
                                  output_hidden_states=True)
        return out.hidden_states[self.output_layer], text_padding_mask
