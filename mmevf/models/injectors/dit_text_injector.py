"""DIT's text injection into SAM's ViT image encoder (L-DIT and E-DIT)."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from segment_anything.modeling.image_encoder import (Block, ImageEncoderViT, get_rel_pos,
                                                     window_partition, window_unpartition)
from torch import Tensor

from mmevf.registry import MODELS

MODES = ('layer_wise', 'end_to_end')
TEXT_ATTN_MODES = ('all_global', 'window_kv', 'global_blocks_only')
PROJ_INITS = ('zeros', 'xavier')


def split_heads(x: Tensor, num_heads: int) -> Tuple[Tensor, Tensor, Tensor]:
    """(B, N, 3C) output of a ``qkv`` Linear -> q, k, v, each (B, heads, N, C / heads)."""
    b, n, _ = x.shape
    return x.reshape(b, n, 3, num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)


def rel_pos_channels(q: Tensor, rel_pos_h: Tensor, rel_pos_w: Tensor,
                     size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    """SAM's decomposed relative-position bias written as extra query / key channels.

    SAM adds ``q . Rh[qh - kh]`` + ``q . Rw[qw - kw]`` to the logits; with
    ``Q' = [q_rel_h, q_rel_w]`` and ``K' = [onehot(kh), onehot(kw)]`` the product ``Q'K'^T`` is that
    bias, so attention can run in one fused SDPA call without an (N, N) bias tensor.

    Args:
        q: (B, heads, h*w, d) unscaled queries (SAM's bias uses unscaled q).
        rel_pos_h, rel_pos_w: the block's tables, interpolated by SAM's ``get_rel_pos``.
        size: the (h, w) query / key grid.

    Returns:
        (B, heads, h*w, h + w) query channels and (h*w, h + w) key channels.
    """
    h, w = size
    rh = get_rel_pos(h, h, rel_pos_h)  # (h, h, d)
    rw = get_rel_pos(w, w, rel_pos_w)  # (w, w, d)
    b, heads, _, d = q.shape
    grid_q = q.reshape(b, heads, h, w, d)
    q_h = torch.einsum('bnhwc,hkc->bnhwk', grid_q, rh).reshape(b, heads, h * w, h)
    q_w = torch.einsum('bnhwc,wkc->bnhwk', grid_q, rw).reshape(b, heads, h * w, w)
    rows = torch.arange(h, device=q.device).repeat_interleave(w)
    cols = torch.arange(w, device=q.device).repeat(h)
    k_rel = torch.cat([F.one_hot(rows, h), F.one_hot(cols, w)], dim=-1).to(q.dtype)
    return torch.cat([q_h, q_w], dim=-1), k_rel


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
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value, allowed in (('mode', mode, MODES),
                                     ('text_attn_mode', text_attn_mode, TEXT_ATTN_MODES),
                                     ('proj_init', proj_init, PROJ_INITS)):
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
        num_layer_projs = (depth - 1 if e2e_layer_proj else 0) if end_to_end else depth
        self.layer_projs = nn.ModuleList(
            nn.Linear(embed_dim, embed_dim) for _ in range(num_layer_projs))
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
        text = None
        if text_feats is not None and self.pre_proj is not None:
            text_feats = self.pre_proj(text_feats)
            if self.mode == 'end_to_end':
                text = self.drop(text_feats)
        first = True  # E-DIT: the first text-reading block takes T_0 as is
        for i, blk in enumerate(encoder.blocks):
            reads_text = text_feats is not None and self.reads_text(blk)
            if reads_text and self.mode == 'layer_wise':
                text = self.drop(self.layer_projs[i](text_feats))
            elif reads_text and not first and len(self.layer_projs):
                text = self.drop(self.layer_projs[i - 1](text))
            first = first and not reads_text
            block_text = text if reads_text else None
            if self.with_cp and torch.is_grad_enabled():
                x, out_text = cp.checkpoint(
                    self.block, blk, x, block_text, key_mask, use_reentrant=False)
            else:
                x, out_text = self.block(blk, x, block_text, key_mask)
            if reads_text and self.mode == 'end_to_end':
                text = out_text
        return encoder.neck(x.permute(0, 3, 1, 2))

    def reads_text(self, blk: Block) -> bool:
        """Whether the text enters this block (not in window blocks for global_blocks_only)."""
        return not (self.text_attn_mode == 'global_blocks_only' and blk.window_size > 0)

    # ------------------------------------------------------------------ one block
    def block(self, blk: Block, x: Tensor, text: Optional[Tensor],
              key_mask: Optional[Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
        """One ViT block on the (B, h, w, d) grid and the (B, l, d) text (or ``None``)."""
        windowed = blk.window_size > 0 and self.text_attn_mode != 'all_global'
        if text is None:
            if windowed or blk.window_size == 0:
                return blk(x), text  # SAM's own forward: bitwise SAM
            # all_global without text: SAM's attention over the whole grid (window -> global)
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
        # SAM: logits = (q * scale) k^T + rel-pos bias(q); the bias as extra channels.
        q_vis, k_vis = q * attn.scale, k
        if attn.use_rel_pos:
            q_rel, k_rel = rel_pos_channels(q, attn.rel_pos_h, attn.rel_pos_w, (gh, gw))
            q_vis = torch.cat([q_vis, q_rel], dim=-1)
            k_vis = torch.cat([k, k_rel.expand(*k.shape[:2], -1, -1)], dim=-1)
            k_t = F.pad(k_t, (0, q_rel.shape[-1]))  # text: zero rel-pos bias
        if mask is not None:  # visual keys always attend
            mask = F.pad(mask, (gh * gw, 0), value=True)
        out = F.scaled_dot_product_attention(
            q_vis, torch.cat([k_vis, k_t], dim=2), torch.cat([v, v_t], dim=2),
            attn_mask=mask, scale=1.0)
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
