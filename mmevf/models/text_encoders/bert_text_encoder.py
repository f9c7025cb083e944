"""BERT text encoder for DIT (``transformers`` ``BertModel``, parameters ``bert.*``)."""
from typing import Optional

from mmevf.registry import MODELS
from .hf_text_encoder import HFTextEncoder


@MODELS.register_module()
class BertTextEncoder(HFTextEncoder):
    """Token ids -> features of one BERT layer, with the padding mask passed on:
    :class:`HFTextEncoder` with a ``BertModel`` under ``bert.*`` (the keys of DIT checkpoints)
    and BERT weights loaded through mmevf's ``StrictPretrained`` (layout ``'bert'``), not
    through a ``pretrained`` folder.

    Args:
        config: ``BertConfig`` arguments of the architecture; the defaults (``{}``) are
            ``bert-base-uncased`` (12 layers, 768 wide, 30522 words). Tiny test / SynthRef
            models give e.g. ``dict(hidden_size=64, num_hidden_layers=2, ...)``.
        output_layer: which hidden state is returned: 0 the embeddings, k the output of layer k.
            The paper uses the last layer (12 for BERT-base); the released DIT code uses 1.
        frozen: no gradients, eval mode (no dropout), forward under ``torch.no_grad()``.
        init_cfg: mmengine init config; BERT weights load strictly through
            ``dict(type='StrictPretrained', checkpoint=FOLDER, layout='bert',
            prefix='text_encoder.')``, FOLDER a local ``transformers`` BERT (``config.json``
            and ``model.safetensors`` / ``pytorch_model.bin``, e.g. ``bert-base-uncased``;
            never from the hub); without it, random weights.
    """

    model_attr = 'bert'

    def __init__(self,
                 config: Optional[dict] = None,
                 output_layer: int = 12,
                 frozen: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        # no `pretrained` folder: the weights come through StrictPretrained (init_cfg)
        super().__init__(config=dict(config or {}, model_type='bert'), output_layer=output_layer,
                         frozen=frozen, init_cfg=init_cfg)
