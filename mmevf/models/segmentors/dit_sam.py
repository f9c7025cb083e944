"""DIT: SAM with the referring text injected into its image encoder."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mmevf.registry import MODELS
from ..sam import SAMImageEncoder
from .text_prompt_segmentor import DecodeOutput, TextPromptSegmentor


@MODELS.register_module()
class DITSAM(TextPromptSegmentor):
    """Deep Instruction Tuning for SAM (Huang et al., 2024) as an MMEngine model.

    For a batch of B images carrying N expressions in total:

    1. BERT encodes the expressions: (N, L) ids -> (N, L, C_t) features + (N, L) padding mask.
    2. Each expression's image goes through SAM's image encoder with the text injected into
       every block (``DITTextInjector``): (N, 3, S, S) -> (N, 256, S/16, S/16). Unlike EVF-SAM
       the encoder runs once per *expression*.
    3. ``text_to_prompt`` (W_o, Linear(C_t, 256)) turns the BERT features into sparse prompts
       for SAM's mask decoder; padding tokens are left out (``mask_text_padding``), so the
       decoder sees each expression's real tokens only. Dense prompt: SAM's ``no_mask_embed``;
       positional encoding on the embedding's actual grid (``prompt_head`` built for it, e.g.
       ``image_embedding_size=32`` at 512 input).
    4. Masks are decoded with ``multimask_output=False`` and brought to the original size.

    **The paper's "Default" baseline** (Tab. 1): ``injector=None``. The text then reaches SAM only
    as the decoder's sparse prompts, and the image encoder runs SAM's own forward once per image
    (its embedding is the image's alone, so it may come from an embedding cache). Tab. 1's "Add
    2 / 4 decoder layers" rows are this with a deeper ``prompt_head.transformer``.

    State-dict keys: ``image_encoder.*`` are SAM's ``image_encoder.*`` and
    ``prompt_head.{prompt_encoder,mask_decoder}.*`` SAM's ``{prompt_encoder,mask_decoder}.*``:
    each part loads an official ``sam_vit_*.pth`` strictly through its ``init_cfg`` (mmevf's
    ``StrictPretrained``, ``layout='sam'``). New
    parameters live under ``text_encoder.*``, ``injector.*`` and ``text_to_prompt.*``.

    Args:
        image_encoder: ``SAMImageEncoder`` config, built at the input size it runs at (its
            ``img_size``, which sets the preprocessor's ``pad_size``): the DIT configs build
            it at 512 (32 x 32 grid), and the official 1024² ``pos_embed`` / rel-pos tables
            are resized once, at load (``SAMImageEncoder.adapt_state_dict``).
        text_encoder: ``BertTextEncoder`` config.
        injector: ``DITTextInjector`` config; ``embed_dim``, ``depth``, ``text_dim`` default to
            the two encoders'. ``None``: no injection (the "Default" baseline, see above).
        prompt_head: ``SAMPromptHead`` config.
        data_preprocessor: ``SAMDataPreprocessor`` config (BERT: ``pad_token_id=0``).
        mask_text_padding: leave padding tokens out of the decoder prompts; ``False`` reproduces
            the released code (all L tokens, padding included, are prompts).
        trainable: prefixes of the parameters that train; all others are frozen. The paper's
            settings: everything (default); frozen BERT (drop ``'text_encoder'``); frozen SAM
            encoder (drop ``'image_encoder'``). BERT parts that never reach the output (pooler,
            layers after ``output_layer``) are always frozen.
        init_cfg: mmengine init config.
        no_target_head / no_target_threshold / mask_loss_on_no_target: expressions without
            target (off by default), see :class:`TextPromptSegmentor`.
    """
    # the text enters SAM's image encoder: its embedding is not the image's alone
    image_embedding_cacheable = False

    def __init__(self,
                 image_encoder: dict,
                 text_encoder: dict,
                 injector: Optional[dict],
                 prompt_head: dict,
                 data_preprocessor: Optional[dict] = None,
                 mask_text_padding: bool = True,
                 trainable: Sequence[str] = ('image_encoder', 'text_encoder', 'injector',
                                             'text_to_prompt', 'prompt_head'),
                 init_cfg: Optional[dict] = None,
                 no_target_head: Optional[dict] = None,
                 no_target_threshold: float = 0.5,
                 mask_loss_on_no_target: bool = False) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor or dict(type='SAMDataPreprocessor',
                                                        pad_token_id=0),
            init_cfg=init_cfg, no_target_head=no_target_head,
            no_target_threshold=no_target_threshold,
            mask_loss_on_no_target=mask_loss_on_no_target)
        self.build_sam(image_encoder, prompt_head)
        if not isinstance(self.image_encoder, SAMImageEncoder):
            # the injector runs SAM's ViT block by block (norm1, attn.qkv, rel-pos tables, ...)
            raise TypeError(f'DITSAM needs SAMImageEncoder (SAM\'s ViT) as its image encoder: '
                            f'DIT injects the text into its blocks; got '
                            f'{type(self.image_encoder).__name__}')
        self.text_encoder = MODELS.build(text_encoder)
        self.injector = None
        if injector is not None:
            injector = dict(injector)
            injector.setdefault('embed_dim', self.image_encoder.pos_embed.shape[-1])
            injector.setdefault('depth', len(self.image_encoder.blocks))
            injector.setdefault('text_dim', self.text_encoder.embed_dims)
            self.injector = MODELS.build(injector)
        else:  # the embedding depends on the image alone
            self.image_embedding_cacheable = True
        self.text_to_prompt = nn.Linear(self.text_encoder.embed_dims, self.prompt_head.embed_dim)
        self.mask_text_padding = mask_text_padding
        self.trainable = tuple(trainable)
        unused = tuple(f'text_encoder.{p}' for p in self.text_encoder.unused_parameter_prefixes())
        self.set_trainable(self.trainable, frozen_modules=('image_encoder', 'text_encoder'),
                           always_frozen=unused)
        # The SAM encoder is run by the injector, not through its forward: gradients still flow
        # through it to the projections when it is frozen, which is what that setting needs.

    # ------------------------------------------------------------------ encoding
    def encode(self, inputs: Dict[str, Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        """Image embeddings (N, 256, h, w), prompts (N, L, 256), padding mask (N, L)."""
        feats, pad_mask = self.text_encoder(inputs['text_ids'], inputs['text_padding_mask'])
        if self.injector is None:  # "Default": SAM's encoder once per image, text to the decoder
            embeddings = self.image_embeddings(inputs)[inputs['expr_image_index']]
            return embeddings, self.text_to_prompt(feats), pad_mask
        images = inputs['img'][inputs['expr_image_index']]  # one image copy per expression
        embeddings = self.injector(self.image_encoder, images, feats, pad_mask)
        return embeddings, self.text_to_prompt(feats), pad_mask

    def decode(self, inputs: Dict[str, Tensor]) -> List[DecodeOutput]:
        """Low-resolution mask logits and IoU predictions (and no-target logits, with the
        head), one entry per image."""
        embeddings, prompts, pad_mask = self.encode(inputs)
        outputs = []
        for j in range(embeddings.shape[0]):
            # SAM's decoder has no key mask: padding is dropped per expression instead.
            tokens = prompts[j:j + 1, ~pad_mask[j]] if self.mask_text_padding else prompts[j:j + 1]
            outputs.append(self.decode_prompt_head(embeddings[j:j + 1], tokens))
        # each element (logits, IoUs, no-target logits) of all expressions, regrouped by image
        return list(zip(*(self.group_by_image(torch.cat(column), inputs)
                          for column in zip(*outputs))))
