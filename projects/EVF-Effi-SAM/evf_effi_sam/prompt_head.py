"""EfficientSAM's prompt encoder + mask decoder, prompted by EVF's text embedding."""
import copy
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from segment_anything.modeling.prompt_encoder import PositionEmbeddingRandom
from segment_anything.modeling.transformer import Attention
from torch import Tensor

from mmevf.models.heads.sam_prompt_head import SAMPromptHead
from mmevf.registry import MODELS


class MLPBlock(nn.Module):
    """EfficientSAM's MLP: ``layers.{i}.0`` (Linear + GELU, all ``hidden_dim`` wide) then
    ``fc``; unlike SAM's ``MLP`` every hidden layer is a ``Sequential`` and the last one is
    named ``fc`` (SAM: ``layers.{n-1}``)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int,
                 num_layers: int) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(d, hidden_dim), nn.GELU()) for d in dims)
        self.fc = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.fc(x)


class TwoWayAttentionBlock(nn.Module):
    """EfficientSAM's two-way block. Same parts and keys as SAM's except ``mlp``
    (``MLPBlock`` with one hidden layer: ``mlp.layers.0.0``, ``mlp.fc``), and a different
    self-attention step: the query PE is added to the queries themselves (values included)
    and the residual is kept in the first layer too (SAM's first layer replaces the queries
    by the attention output)."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, downsample_rate: int,
                 skip_first_layer_pe: bool) -> None:
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, downsample_rate)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(dim, mlp_dim, dim, 1)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries: Tensor, keys: Tensor, query_pe: Tensor,
                key_pe: Tensor) -> Tuple[Tensor, Tensor]:
        if not self.skip_first_layer_pe:
            queries = queries + query_pe
        queries = self.norm1(queries + self.self_attn(q=queries, k=queries, v=queries))
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q=q, k=k, v=keys))
        queries = self.norm3(queries + self.mlp(queries))
        q, k = queries + query_pe, keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(q=k, k=q, v=queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """SAM's ``TwoWayTransformer`` with EfficientSAM's blocks (same keys otherwise:
    ``layers.{i}.*``, ``final_attn_token_to_image``, ``norm_final_attn``)."""

    def __init__(self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int,
                 attention_downsample_rate: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, attention_downsample_rate,
                                 skip_first_layer_pe=i == 0) for i in range(depth))
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads,
                                                   attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image_embedding: Tensor, image_pe: Tensor,
                point_embedding: Tensor) -> Tuple[Tensor, Tensor]:
        keys = image_embedding.flatten(2).permute(0, 2, 1)
        key_pe = image_pe.flatten(2).permute(0, 2, 1)
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, point_embedding, key_pe)
        attn = self.final_attn_token_to_image(q=queries + point_embedding, k=keys + key_pe,
                                              v=keys)
        return self.norm_final_attn(queries + attn), keys


class EfficientSAMPromptEncoder(nn.Module):
    """EfficientSAM's prompt encoder: SAM's random-Fourier positional encoding and one
    learned embedding per point label (-1 padding, 1 point, 2 / 3 box corners); no dense
    (mask) prompt and no ``not_a_point`` / background embedding."""

    def __init__(self, embed_dim: int, image_embedding_size: int,
                 input_image_size: int) -> None:
        super().__init__()
        self.image_embedding_size = (image_embedding_size, image_embedding_size)
        self.input_image_size = (input_image_size, input_image_size)
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.invalid_points = nn.Embedding(1, embed_dim)
        self.point_embeddings = nn.Embedding(1, embed_dim)
        self.bbox_top_left_embeddings = nn.Embedding(1, embed_dim)
        self.bbox_bottom_right_embeddings = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> Tensor:
        """(1, C, h, w) positional encoding of the image-embedding grid."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def forward(self, points: Tensor, labels: Tensor) -> Tensor:
        """(..., P, 2) xy in input pixels and (..., P) labels -> (..., P, C) embeddings."""
        embedding = self.pe_layer.forward_with_coords(points + 0.5, self.input_image_size)
        for label, table in ((-1, self.invalid_points), (1, self.point_embeddings),
                             (2, self.bbox_top_left_embeddings),
                             (3, self.bbox_bottom_right_embeddings)):
            embedding = embedding + (labels == label)[..., None] * table.weight[0]
        return embedding


class EfficientSAMMaskDecoder(nn.Module):
    """EfficientSAM's mask decoder (keys ``transformer.*``, ``iou_token``, ``mask_tokens``,
    ``final_output_upscaling_layers.{0,1}``, ``output_hypernetworks_mlps.{i}``,
    ``iou_prediction_head``). Differs from SAM's: no dense prompt is added to the image
    embedding; upscaling is ConvT -> GroupNorm(1) -> GELU, ConvT -> GELU; its MLPs are
    ``MLPBlock``s; prompts come as (B, Q, P, C) and the image embedding is tiled Q times."""

    def __init__(self, transformer_dim: int = 256, transformer: dict = dict(
                     depth=2, mlp_dim=2048, num_heads=8),
                 num_multimask_outputs: int = 3, iou_head_depth: int = 2,
                 iou_head_hidden_dim: int = 256,
                 upscaling_layer_dims: Sequence[int] = (64, 32)) -> None:
        super().__init__()
        self.transformer = TwoWayTransformer(embedding_dim=transformer_dim, **transformer)
        self.num_multimask_outputs = num_multimask_outputs
        self.num_mask_tokens = num_multimask_outputs + 1 if num_multimask_outputs > 1 else 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.final_output_upscaling_layers = nn.ModuleList()
        width = transformer_dim
        for i, dims in enumerate(upscaling_layer_dims):
            last = i == len(upscaling_layer_dims) - 1
            self.final_output_upscaling_layers.append(nn.Sequential(
                nn.ConvTranspose2d(width, dims, kernel_size=2, stride=2),
                nn.Identity() if last else nn.GroupNorm(1, dims), nn.GELU()))
            width = dims
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLPBlock(transformer_dim, transformer_dim, width, 2)
            for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLPBlock(transformer_dim, iou_head_hidden_dim,
                                            self.num_mask_tokens, iou_head_depth)

    def forward(self, image_embeddings: Tensor, image_pe: Tensor, sparse_prompt_embeddings: Tensor,
                multimask_output: bool) -> Tuple[Tensor, Tensor]:
        """(B, C, h, w) embeddings, (1, C, h, w) PE, (B, Q, P, C) prompts -> (B Q, 1 or 3,
        4h, 4w) mask logits and (B Q, 1 or 3) IoUs (token 0, or tokens 1..3)."""
        b, q, p, c = sparse_prompt_embeddings.shape
        image = image_embeddings[:, None].expand(-1, q, -1, -1, -1).flatten(0, 1)
        prompts = sparse_prompt_embeddings.reshape(b * q, p, c)
        out = torch.cat([self.iou_token.weight, self.mask_tokens.weight])
        tokens = torch.cat([out[None].expand(b * q, -1, -1), prompts], dim=1)
        _, _, h, w = image.shape
        hs, src = self.transformer(image, image_pe.expand(b * q, -1, -1, -1), tokens)
        mask_tokens = hs[:, 1:1 + self.num_mask_tokens]
        upscaled = src.transpose(1, 2).reshape(b * q, c, h, w)
        for layer in self.final_output_upscaling_layers:
            upscaled = layer(upscaled)
        hyper = torch.stack([mlp(mask_tokens[:, i])
                             for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1)
        masks = (hyper @ upscaled.flatten(2)).view(b * q, -1, *upscaled.shape[2:])
        iou = self.iou_prediction_head(hs[:, 0])
        if multimask_output and self.num_multimask_outputs > 1:
            return masks[:, 1:], iou[:, 1:]
        return masks[:, :1], iou[:, :1]


@MODELS.register_module()
class EfficientSAMPromptHead(BaseModule):
    """EfficientSAM's prompt encoder + mask decoder as EVF-Effi-SAM prompts them: the N text
    embeddings of one image are its N queries (``sparse (1, N, 1, C)``), each decoded against
    the image embedding; keys ``prompt_encoder.*`` / ``mask_decoder.*`` equal the official
    ``visual_model.prompt_encoder.*`` / ``visual_model.mask_decoder.*``.

    The interface is :class:`~mmevf.models.SAMPromptHead`'s for text prompts (``forward``,
    ``postprocess_masks``, ``loss``, ``mask_threshold``), so mmevf's segmentors drive it.

    Args:
        embed_dim: prompt / transformer width (256).
        image_embedding_size / input_image_size: derived from the image encoder.
        num_multimask_outputs: 3 (4 mask tokens; token 0 is the single mask).
        transformer: two-way transformer sizes (depth 2, mlp 2048, 8 heads).
        iou_head_depth: layers of the IoU MLP before its ``fc`` (2, as EVF-Effi builds it).
        iou_head_hidden_dim: 256.
        upscaling_layer_dims: output widths of the two transposed convolutions (64, 32).
        multimask_output: decode tokens 1..3 and keep the best predicted IoU (EVF-Effi:
            ``False``, token 0).
        mask_threshold, loss_bce, loss_dice: as ``SAMPromptHead``.
    """

    def __init__(self,
                 embed_dim: int = 256,
                 image_embedding_size: int = 64,
                 input_image_size: int = 1024,
                 num_multimask_outputs: int = 3,
                 transformer: dict = dict(depth=2, mlp_dim=2048, num_heads=8),
                 iou_head_depth: int = 2,
                 iou_head_hidden_dim: int = 256,
                 upscaling_layer_dims: Sequence[int] = (64, 32),
                 multimask_output: bool = False,
                 mask_threshold: float = 0.0,
                 loss_bce: dict = dict(
                     type='mmdet.CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                 loss_dice: dict = dict(
                     type='mmdet.DiceLoss', use_sigmoid=True, activate=True, naive_dice=True,
                     eps=1e-3, loss_weight=1.0),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dim = embed_dim
        self.image_embedding_size = image_embedding_size
        self.input_image_size = input_image_size
        self.multimask_output = multimask_output
        self.mask_threshold = mask_threshold
        self.prompt_encoder = EfficientSAMPromptEncoder(embed_dim, image_embedding_size,
                                                        input_image_size)
        self.mask_decoder = EfficientSAMMaskDecoder(
            embed_dim, dict(transformer), num_multimask_outputs, iou_head_depth,
            iou_head_hidden_dim, tuple(upscaling_layer_dims))
        self.loss_bce = MODELS.build(copy.deepcopy(loss_bce))
        self.loss_dice = MODELS.build(copy.deepcopy(loss_dice))

    def forward(self, image_embeddings: Tensor, text_embeds: Tensor,
                multimask_output: Optional[bool] = None) -> Tuple[Tensor, Tensor]:
        """(1, C, h, w) embedding of ONE image, (N, 1, C) text embeddings -> (N, 1, 4h, 4w)
        low-resolution logits and (N, 1) predicted IoUs."""
        if multimask_output is None:
            multimask_output = self.multimask_output
        size = self.image_embedding_size
        if image_embeddings.shape[0] != 1 or tuple(image_embeddings.shape[1:]) != (
                self.embed_dim, size, size):
            raise ValueError(f'expected a (1, {self.embed_dim}, {size}, {size}) image embedding, '
                             f'got {tuple(image_embeddings.shape)}')
        if text_embeds.dim() != 3 or text_embeds.shape[-1] != self.embed_dim:
            raise ValueError(f'expected (N, T, {self.embed_dim}) text embeddings, got '
                             f'{tuple(text_embeds.shape)}')
        dtype = self.mask_decoder.iou_token.weight.dtype
        masks, iou_pred = self.mask_decoder(
            image_embeddings=image_embeddings.to(dtype),
            image_pe=self.prompt_encoder.get_dense_pe().to(dtype),
            sparse_prompt_embeddings=text_embeds.to(dtype)[None],  # (1, N, T, C)
            multimask_output=multimask_output)
        if multimask_output:
            best = iou_pred.argmax(dim=1, keepdim=True)
            masks = masks.gather(1, best[..., None, None].expand(-1, -1, *masks.shape[2:]))
            iou_pred = iou_pred.gather(1, best)
        return masks, iou_pred

    def postprocess_masks(self, masks: Tensor, input_size: Sequence[int],
                          original_size: Sequence[int]) -> Tensor:
        """(N, 1, 4h, 4w) logits -> (N, 1, H, W) float32 logits: one bilinear resize straight
        to the original size (EVF-Effi; the input image is a stretch, there is no padding to
        crop). ``input_size`` is unused, kept for the ``SAMPromptHead`` interface."""
        return F.interpolate(masks.float(), tuple(map(int, original_size)), mode='bilinear',
                             align_corners=False)

    loss = SAMPromptHead.loss  # EVF-SAM's BCE + dice per mask, identical
