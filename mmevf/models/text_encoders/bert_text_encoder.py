"""BERT text encoder for DIT (``transformers`` ``BertModel``, parameters ``bert.*``)."""
from typing import Optional

from transformers import BertConfig, BertModel

from mmevf.checkpoint import pretrained_init_cfg
from mmevf.registry import MODELS
from .hf_text_encoder import HFTextEncoder


@MODELS.register_module()
class BertTextEncoder(HFTextEncoder):
    """Token ids -> features of one BERT layer, with the padding mask passed on:
    :class:`HFTextEncoder` with a ``BertModel`` under ``bert.*`` (the keys of DIT checkpoints)
    and BERT weights loaded through mmevf's ``StrictPretrained`` (layout ``'bert'``).

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

    model_attr = 'bert'

    def __init__(self,
                 config: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 output_layer: int = 12,
                 frozen: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        # not HFTextEncoder.__init__: the weights come through StrictPretrained, not a folder
        super(HFTextEncoder, self).__init__(
            init_cfg=pretrained_init_cfg(pretrained, init_cfg, 'bert', 'text_encoder.'))
        self.pretrained = None
        # transformers draws BERT's own initialisation here (std 0.02, LayerNorm 1 / 0).
        self.build_model(BertModel(BertConfig(**(config or {}))), output_layer, frozen)
