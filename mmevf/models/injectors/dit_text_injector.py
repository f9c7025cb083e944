"""DIT's text injection into SAM's ViT image encoder (L-DIT and E-DIT)."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from segment_anything.modeling.image_encoder import (Block, ImageEncoderViT, window_partition,
                                                     window_unpartition)
from torch import Tensor

# the attention core shared with SAMImageEncoder
from mmevf.models.sam.attention import rel_pos_attention, sam_block, split_heads
from mmevf.registry import MODELS

MODES = ('layer_wise', 'end_to_end')
TEXT_ATTN_MODES = ('all_global', 'window_kv', 'global_blocks_only')
PROJ_INITS = ('zeros', 'xavier')
# how L-DIT maps the text features to block i's text tokens (Tab. 4)
INJECTIONS = ('linear', 'cross_attn', 'cross_attn_ffn')
# learnable static prompt tokens: beside the text tokens, or added to them position-wise
STATIC_PROMPT_MODES = ('concat', 'add')


@MODELS.register_module()
class DITTextInjector(BaseModule):
    """Runs an unmodified ``segment_anything`` ``ImageEncoderViT`` with text tokens as extra
    keys / values inside every attention softmax (Deep Instruction Tuning).

    The encoder is passed at call time and run block by block through its own sub-modules
    (``norm1``, ``attn.qkv``, ``attn.proj``, rel-pos tables, ``norm2``, ``mlp``, ``neck``), so SAM's
    weights and state-dict keys are untouched; this module only owns the text projections.

    - ``layer_wise`` (L-DIT): block i sees text ``T_i = Drop(P_i(F))`` (F: text features, through
      ``pre_proj`` when ``text_dim != embed_dim``). Text outputs are discarded, so only the
      text keys / values are computed (exactly the released concatenation, see the tests).
    - ``end_to_end`` (E-DIT): ``T_0 = Drop(pre_proj(F))``, then the text is carried through the
      blocks (text queries attend to all visual tokens and the text, text MLP), re-projected by
      ``P_i`` between blocks when ``e2e_layer_proj``.

    ``text_attn_mode``: ``all_global`` (released code: every block attends globally, window blocks
    included, their rel-pos tables interpolated by SAM's ``get_rel_pos``); ``window_kv`` (SAM's
    windows kept, every window's queries also attend to the shared text keys); and
    ``global_blocks_only`` (text only enters the global blocks, window blocks run unchanged).

    Exactness: with no text (``text_feats=None`` or l = 0), every block runs SAM's own forward
    (``all_global``: the attention over the whole grid), so the output is bitwise SAM's.

    Args:
        mode: ``'layer_wise'`` or ``'end_to_end'``.
        embed_dim: ViT width d.
        depth: number of ViT blocks.
        text_dim: text feature width (768 for BERT-base).
        text_attn_mode: see above.
        mask_text_padding: padded text tokens are masked out as keys; ``False`` reproduces the
            released code, which attends to them.
        proj_init: ``'zeros'`` (released code) or ``'xavier'`` for the per-layer projections (and
            E-DIT's ``pre_proj``). L-DIT's ``pre_proj`` is always Xavier-initialised: behind
            zero-initialised ``P_i`` a zero ``pre_proj`` would never receive a gradient.
        proj_dropout: dropout on every projected text input.
        e2e_layer_proj: E-DIT re-projects the text between blocks (released code).
        with_cp: activation checkpointing per block (ViT-L/H training).
        injection: L-DIT's mapping of the text features to block i's text tokens (Tab. 4):
            ``'linear'`` (``P_i``, the paper's L-DIT), ``'cross_attn'`` (the text queries block
            i's visual input, ``TextCrossAttention``) or ``'cross_attn_ffn'`` (plus an FFN).
        cross_attn_heads: heads of the cross-attention mappings.
        num_static_prompts: learnable prompt tokens shared by all expressions (Tab. 2 "static"
            prompts; the text tokens are the "dynamic" ones); 0: none. They never enter without
            text, so ``text_feats=None`` stays bitwise SAM.
        static_prompt_mode: ``'concat'``: the static tokens are extra text tokens beside the
            text (never masked), fresh per block in L-DIT, entering once with ``T_0`` and carried
            in E-DIT; ``'add'``: per-block tokens added position-wise to the block's text
            tokens (the released ``*_token*`` ablations; ``num_static_prompts`` must cover the
            text length).
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 mode: str = 'layer_wise',
                 embed_dim: int = 768,
                 depth: int = 12,
                 text_dim: int = 768,
                 text_attn_mode: str = 'all_global',
                 mask_text_padding: bool = True,
                 proj_init: str = 'zeros',
                 proj_dropout: float = 0.1,
                 e2e_layer_proj: bool = True,
                 with_cp: bool = False,
                 injection: str = 'linear',
                 cross_attn_heads: int = 8,
                 num_static_prompts: int = 0,
                 static_prompt_mode: str = 'concat',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value, allowed in (('mode', mode, MODES),
                                     ('text_attn_mode', text_attn_mode, TEXT_ATTN_MODES),
                                     ('proj_init', proj_init, PROJ_INITS),
                                     ('injection', injection, INJECTIONS),
                                     ('static_prompt_mode', static_prompt_mode,
                                      STATIC_PROMPT_MODES)):
            if value not in allowed:
                raise ValueError(f'{name} must be one of {allowed}, got {value!r}')
        self.mode = mode
        self.embed_dim = embed_dim
        self.depth = depth
        self.text_dim = text_dim
        self.text_attn_mode = text_attn_mode
        self.mask_text_padding = mask_text_padding
        self.with_cp = with_cp
        end_to_end = mode == 'end_to_end'
        self.pre_proj = nn.Linear(text_dim, embed_dim) if (
            end_to_end or text_dim != embed_dim) else None
        if injection != 'linear' and end_to_end:
            raise ValueError(f'injection={injection!r} maps the text afresh for every block: '
                             f'it needs mode=\'layer_wise\' (E-DIT carries the text)')
        self.injection = injection
        num_layer_projs = (depth - 1 if e2e_layer_proj else 0) if end_to_end else depth
        if injection != 'linear':
            num_layer_projs = 0  # the cross-attention mappings replace P_i
        self.layer_projs = nn.ModuleList(
            nn.Linear(embed_dim, embed_dim) for _ in range(num_layer_projs))
        self.text_maps = nn.ModuleList(
            MODELS.build(dict(type='TextCrossAttention', embed_dim=embed_dim,
                              num_heads=cross_attn_heads, dropout=proj_dropout,
                              with_ffn=injection == 'cross_attn_ffn'))
            for _ in range(depth)) if injection != 'linear' else None
        self.static_prompt_mode = static_prompt_mode
        self.static_prompts = None
        if num_static_prompts:
            # E-DIT's concatenated static tokens enter once and are carried like its text
            sets = 1 if (end_to_end and static_prompt_mode == 'concat') else depth
            self.static_prompts = nn.Parameter(torch.zeros(sets, num_static_prompts, embed_dim))
        self.drop = nn.Dropout(proj_dropout)
        self._init_projs(proj_init)

    def _init_projs(self, proj_init: str) -> None:
        zero_init = list(self.layer_projs)
        if self.pre_proj is not None:
            (zero_init if self.mode == 'end_to_end' else []).append(self.pre_proj)
            if self.mode == 'layer_wise' or proj_init == 'xavier':
                nn.init.xavier_uniform_(self.pre_proj.weight)
                nn.init.zeros_(self.pre_proj.bias)
        for linear in zero_init:
            if proj_init == 'zeros':
                nn.init.zeros_(linear.weight)
            else:
                nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)
        if self.static_prompts is not None:  # as ViT tokens; zeros would be a dead start
            nn.init.trunc_normal_(self.static_prompts, std=0.02)

    # ------------------------------------------------------------------ encoder
    def forward(self, encoder: ImageEncoderViT, images: Tensor, text_feats: Optional[Tensor],
                text_pad_mask: Optional[Tensor] = None) -> Tensor:
        """Encode images with their texts.

        Args:
            encoder: a ``segment_anything`` ``ImageEncoderViT`` (e.g. ``SAMImageEncoder``).
            images: (B, 3, S, S) normalised images, S the encoder's ``img_size`` (a 512² DIT
                encoder loads SAM's 1024² position tables resized once, see
                ``SAMImageEncoder.adapt_state_dict``).
            text_feats: (B, l, text_dim) text features, one text per image, or ``None``.
            text_pad_mask: (B, l) bool, True at padding, or ``None`` (no padding).

        Returns:
            (B, out_chans, S / patch, S / patch) image embeddings.
        """
        if len(encoder.blocks) != self.depth:
            raise ValueError(f'injector built for {self.depth} blocks, encoder has '
                             f'{len(encoder.blocks)}')
        x = encoder.patch_embed(images)  # (B, h, w, d)
        if encoder.pos_embed is not None:
            if encoder.pos_embed.shape[1:3] != x.shape[1:3]:
                raise ValueError(
                    f'images of side {images.shape[-1]} give a {tuple(x.shape[1:3])} grid, the '
                    f'encoder was built for {tuple(encoder.pos_embed.shape[1:3])}: build it at '
                    f'img_size={images.shape[-1]} (official weights are resized once at load)')
            x = x + encoder.pos_embed
        if text_feats is None or text_feats.shape[1] == 0:
            text_feats = None
        else:
            if text_feats.shape[0] != x.shape[0]:
                raise ValueError(f'{text_feats.shape[0]} texts for {x.shape[0]} images')
            text_feats = text_feats.to(x.dtype)
        key_mask = None  # (B, 1, 1, l) True = attend
        if text_feats is not None and text_pad_mask is not None and self.mask_text_padding:
            key_mask = ~text_pad_mask.bool()[:, None, None, :]
        concat_prompts = text_feats is not None and self.static_prompts is not None and \
            self.static_prompt_mode == 'concat'
        if concat_prompts and key_mask is not None:  # static tokens come first, always seen
            key_mask = F.pad(key_mask, (self.static_prompts.shape[1], 0), value=True)
        if (text_feats is not None and self.static_prompts is not None
                and self.static_prompt_mode == 'add'
                and text_feats.shape[1] > self.static_prompts.shape[1]):
            raise ValueError(f'{text_feats.shape[1]} text tokens but '
                             f'{self.static_prompts.shape[1]} static prompts to add to them '
                             f'(num_static_prompts)')
        text = None
        if text_feats is not None and self.pre_proj is not None:
            text_feats = self.pre_proj(text_feats)
            if self.mode == 'end_to_end':
                text = self.drop(text_feats)
        # text-free blocks run as the encoder would alone (SAMImageEncoder's fast core or not)
        fast_bias = encoder.max_bias_elements if getattr(encoder, 'fast_attention',
                                                         False) else None
        first = True  # E-DIT: the first text-reading block takes T_0 as is
        for i, blk in enumerate(encoder.blocks):
            reads_text = text_feats is not None and self.reads_text(blk)
            if reads_text and self.mode == 'layer_wise':
                if self.text_maps is not None:  # the text reads this block's visual input
                    text = self.text_maps[i](text_feats, x.flatten(1, 2))
                else:
                    text = self.drop(self.layer_projs[i](text_feats))
            elif reads_text and not first and len(self.layer_projs):
                text = self.drop(self.layer_projs[i - 1](text))
            if reads_text and self.static_prompts is not None:
                text = self.add_static_prompts(text, i, first)
            first = first and not reads_text
            block_text = text if reads_text else None
            if self.with_cp and torch.is_grad_enabled():
                x, out_text = cp.checkpoint(
                    self.block, blk, x, block_text, key_mask, fast_bias, use_reentrant=False)
            else:
                x, out_text = self.block(blk, x, block_text, key_mask, fast_bias)
            if reads_text and self.mode == 'end_to_end':
                text = out_text
        return encoder.neck(x.permute(0, 3, 1, 2))

    def add_static_prompts(self, text: Tensor, index: int, first: bool) -> Tensor:
        """Block ``index``'s (B, l, d) text tokens with the static prompts: (B, n + l, d) with
        ``'concat'`` (E-DIT: at its first text-reading block only, then carried), else the
        block's (n, d) tokens added to the first l positions."""
        if self.static_prompt_mode == 'add':
            return text + self.static_prompts[index, :text.shape[1]].to(text.dtype)
        if self.mode == 'end_to_end' and not first:
            return text  # carried from the first block, static tokens included
        prompts = self.static_prompts[0 if self.mode == 'end_to_end' else index]
        return torch.cat([prompts.to(text.dtype).expand(text.shape[0], -1, -1), text], dim=1)

    def reads_text(self, blk: Block) -> bool:
        """Whether the text enters this block (not in window blocks for global_blocks_only)."""
        return not (self.text_attn_mode == 'global_blocks_only' and blk.window_size > 0)

    # ------------------------------------------------------------------ one block
    def block(self, blk: Block, x: Tensor, text: Optional[Tensor],
              key_mask: Optional[Tensor],
              fast_bias: Optional[int] = None) -> Tuple[Tensor, Optional[Tensor]]:
        """One ViT block on the (B, h, w, d) grid and the (B, l, d) text (or ``None``).

        Without text the block runs as the encoder runs it alone: through the fast core
        (``sam_block``, bias cap ``fast_bias``) for a ``SAMImageEncoder`` with
        ``fast_attention``, else ``segment_anything``'s own forward (``fast_bias=None``), so no
        text gives bitwise the encoder's output either way."""
        windowed = blk.window_size > 0 and self.text_attn_mode != 'all_global'
        if text is None:
            # all_global: window blocks attend over the whole grid (window -> global)
            window = None if (windowed or blk.window_size == 0) else 0
            if fast_bias is not None:
                return sam_block(blk, x, fast_bias, window), text
            if window is None:
                return blk(x), text  # SAM's own forward: bitwise SAM
            x = x + blk.attn(blk.norm1(x))
            return x + blk.mlp(blk.norm2(x)), text
        x_attn, t_attn = self.attention(blk, blk.norm1(x), blk.norm1(text), key_mask, windowed)
        x = x + x_attn
        x = x + blk.mlp(blk.norm2(x))
        if t_attn is not None:
            text = text + t_attn
            text = text + blk.mlp(blk.norm2(text))
        return x, text

    def attention(self, blk: Block, xn: Tensor, tn: Tensor, key_mask: Optional[Tensor],
                  windowed: bool) -> Tuple[Tensor, Optional[Tensor]]:
        """Attention of the normalised grid (B, h, w, d) and text (B, l, d), text as extra keys.

        Returns the projected visual output (B, h, w, d) and, for E-DIT, the text's (B, l, d).
        """
        attn = blk.attn
        b, h, w, d = xn.shape
        if windowed:
            xn, pad_hw = window_partition(xn, blk.window_size)  # (B * nW, ws, ws, d)
        bw, gh, gw, _ = xn.shape
        q, k, v = split_heads(attn.qkv(xn.reshape(bw, gh * gw, d)), attn.num_heads)
        q_t, k_t, v_t = split_heads(attn.qkv(tn), attn.num_heads)  # (B, heads, l, dh)
        text_kv = (k_t, v_t)  # per image, for E-DIT's text queries
        mask = key_mask
        if bw != b:  # every window of an image shares its text keys (expanded, not copied)
            def per_window(t: Tensor) -> Tensor:
                return t[:, None].expand(b, bw // b, *t.shape[1:]).reshape(bw, *t.shape[1:])
            k_t, v_t = per_window(k_t), per_window(v_t)
            mask = None if key_mask is None else per_window(key_mask)
        # SAM's attention (rel-pos on the visual keys) with the text as extra keys: the shared core
        out = rel_pos_attention(
            q, k, v, attn.scale, (attn.rel_pos_h, attn.rel_pos_w) if attn.use_rel_pos else None,
            (gh, gw), extra_k=k_t, extra_v=v_t, extra_mask=mask)
        out = attn.proj(out.permute(0, 2, 1, 3).reshape(bw, gh, gw, d))
        if windowed:
            out = window_unpartition(out, blk.window_size, pad_hw, (h, w))
        if self.mode == 'layer_wise':
            return out, None
        # E-DIT text queries: all unpadded visual keys of the image plus the text, no rel-pos.
        if windowed:
            k, v = (window_unpartition(t.permute(0, 2, 1, 3).reshape(bw, gh, gw, d),
                                       blk.window_size, pad_hw, (h, w))
                    .reshape(b, h * w, attn.num_heads, -1).permute(0, 2, 1, 3) for t in (k, v))
        t_mask = None if key_mask is None else F.pad(key_mask, (h * w, 0), value=True)
        t_out = F.scaled_dot_product_attention(
            q_t, torch.cat([k, text_kv[0]], dim=2), torch.cat([v, text_kv[1]], dim=2),
            attn_mask=t_mask, scale=attn.scale)
        return out, attn.proj(t_out.permute(0, 2, 1, 3).reshape(b, -1, d))
