"""EVF-SAM2: the EVF-SAM recipe (BEiT-3 + projector prompting SAM's decoder) on SAM-2."""
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmevf.models.heads import SAMPromptHead
from mmevf.models.segmentors.text_prompt_segmentor import (DecodeGroup, LowResOutput,
                                                            TextPromptSegmentor)
from mmevf.registry import MODELS

# SAM-2's pixel statistics (ImageNet) on the 0-255 scale
SAM2_MEAN = (123.675, 116.28, 103.53)
SAM2_STD = (58.395, 57.12, 57.375)
# sam2.build_sam.build_sam2(apply_postprocessing=True), as the official EVF-SAM2 builds SAM-2
SAM2_POSTPROCESSING = (
    '++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true',
    '++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05',
    '++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98',
)


def build_sam2_model(config: str = 'configs/sam2/sam2_hiera_l.yaml',
                     image_size: Optional[int] = None,
                     overrides: Sequence[str] = ()) -> nn.Module:
    """SAM-2 (``SAM2Base``) from a hydra config of the ``sam2`` package, instantiated as
    ``sam2.build_sam.build_sam2`` does (the same overrides, including the official EVF-SAM2's
    ``apply_postprocessing``: dynamic multimask via stability), with random weights, in eval
    mode, left on the device it is built on (no ``.to('cuda')``, so that it can be built on
    ``meta`` to count parameters).

    Args:
        config: e.g. ``configs/sam2/sam2_hiera_t.yaml`` (EVF-SAM2's checkpoints are SAM-2.0:
            ``configs/sam2/``, not ``configs/sam2.1/``).
        image_size: SAM-2's input side; ``None`` keeps the config's (1024).
        overrides: more hydra overrides.
    """
    try:
        from hydra import compose
        from hydra.utils import instantiate
        from omegaconf import OmegaConf

        import sam2  # noqa: F401  (initialises hydra with sam2's config module)
    except ImportError as err:  # the project is optional for mmevf
        raise ImportError('EVFSAM2 needs the sam2 package: SAM2_BUILD_CUDA=0 pip install '
                          'sam2==1.1.0 hydra-core iopath') from err
    extra = list(overrides) + list(SAM2_POSTPROCESSING)
    if image_size is not None:
        extra.append(f'++model.image_size={int(image_size)}')
    cfg = compose(config_name=config, overrides=extra)
    OmegaConf.resolve(cfg)
    return instantiate(cfg.model, _recursive_=True).eval()


def load_sam2_checkpoint(model: nn.Module, path: str) -> None:
    """An official SAM-2 file (``{'model': state_dict}``) into ``model``, strictly, by
    ``sam2``'s own loader."""
    from sam2.build_sam import _load_checkpoint
    _load_checkpoint(model, path)


@MODELS.register_module()
class EVFSAM2(TextPromptSegmentor):
    """EVF-SAM2 (Zhang et al., 2024) as an MMEngine model, with SAM-2 from ``sam2``.

    For a batch of B images carrying N expressions:

    1. SAM-2's image encoder runs **once per image** on the (B, 3, S, S) stretched images
       (``SAM2Resize``): FPN features with ``conv_s0`` / ``conv_s1`` applied, ``no_mem_embed``
       added to the last level -> (B, 256, S / 16, S / 16) plus two high-resolution levels.
    2. BEiT-3 + projector, as :class:`~mmevf.models.EVFSAM`: (N, 1, 256) text prompts.
    3. SAM-2's prompt encoder without points (no padding point) with the prompt appended to
       the sparse embeddings; SAM-2's mask decoder decodes the N_i expressions of an image
       against its features; with ``multimask_output`` (the official image path) the mask of
       the highest predicted IoU among the three is kept. The object-score head is ignored.
    4. Masks are resized bilinearly straight to the original size (no crop: nothing padded).

    Expressions may also carry points and a box, or only those (see
    :class:`~mmevf.models.segmentors.text_prompt_segmentor.TextPromptSegmentor` for the
    data-sample fields): SAM-2's prompt encoder embeds them as ``SAM2ImagePredictor`` does and
    the text token follows (:meth:`decode_image`); the image is still encoded once.

    Args:
        sam2: ``build_sam2_model`` keyword arguments (``config``, ``image_size``,
            ``overrides``) and ``checkpoint``: an official SAM-2 file
            (``sam2_hiera_large.pt``) loaded by :meth:`init_weights` (training from SAM-2's
            weights), or ``None`` (an EVF-SAM2 checkpoint is loaded afterwards).
        mm_encoder: multimodal encoder config (``BEiT3MultiwayEncoder``).
        projector: ``EVFProjector`` config; ``in_channels`` defaults to the encoder width.
        data_preprocessor: ``SAMDataPreprocessor`` config; SAM-2's mean / std by default.
        multimask_output: the best-IoU mask of three (official since commit 9d00853);
            ``False``: mask token 0 (with SAM-2's dynamic stability fallback in eval mode).
        mask_threshold: logits above it are the mask (0).
        loss_bce / loss_dice: the mask losses (EVF's BCE + dice), as ``SAMPromptHead``.
        trainable: prefixes of the parameters that train; the maintainers' recipe trains
            BEiT-3 and the projector, SAM-2 stays frozen (and in eval mode).
    """
    image_embedding_cacheable = False  # no embedding cache for SAM-2 (yet)
    supports_geometric_prompts = True
    mask_threshold: float = 0.0  # its own (``__init__``), not a prompt head's

    def __init__(self,
                 sam2: dict,
                 mm_encoder: dict,
                 projector: dict,
                 data_preprocessor: Optional[dict] = None,
                 multimask_output: bool = True,
                 mask_threshold: float = 0.0,
                 loss_bce: Optional[dict] = None,
                 loss_dice: Optional[dict] = None,
                 trainable: Sequence[str] = ('mm_encoder', 'projector'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor or dict(
                type='SAMDataPreprocessor', mean=SAM2_MEAN, std=SAM2_STD),
            init_cfg=init_cfg)
        sam2 = dict(sam2)
        self.sam2_checkpoint = sam2.pop('checkpoint', None)
        self.sam2 = build_sam2_model(**sam2)
        side = int(self.sam2.image_size)
        pad_size = getattr(self.data_preprocessor, 'pad_size', None)
        if pad_size is None:
            self.data_preprocessor.pad_size = side
        elif pad_size != side:
            raise ValueError(f'data_preprocessor.pad_size={pad_size} disagrees with SAM-2\'s '
                             f'image_size={side}; leave it out')
        self.mm_encoder = MODELS.build(mm_encoder)
        projector = dict(projector)
        projector.setdefault('in_channels', self.mm_encoder.embed_dims)
        self.projector = MODELS.build(projector)
        self.multimask_output = multimask_output
        self.mask_threshold = mask_threshold
        self.loss_bce = MODELS.build(loss_bce or dict(
            type='mmdet.CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0))
        self.loss_dice = MODELS.build(loss_dice or dict(
            type='mmdet.DiceLoss', use_sigmoid=True, activate=True, naive_dice=True, eps=1e-3,
            loss_weight=1.0))
        self.trainable = tuple(trainable)
        self.set_trainable(self.trainable)

    def init_weights(self) -> None:
        """mmengine's initialisation of BEiT-3 and the projector (SAM-2 keeps its own), then
        SAM-2's pretrained file if ``sam2.checkpoint`` is given."""
        super().init_weights()
        if self.sam2_checkpoint is not None:
            load_sam2_checkpoint(self.sam2, self.sam2_checkpoint)

    def train(self, mode: bool = True) -> 'EVFSAM2':
        """A frozen SAM-2 stays in eval mode (its decoder's train/eval behaviours differ)."""
        super().train(mode)
        if not any(p.requires_grad for p in self.sam2.parameters()):
            self.sam2.eval()
        return self

    # ------------------------------------------------------------------ encoding
    def sam2_features(self, images: Tensor) -> Tuple[Tensor, List[Tensor]]:
        """(B, 3, S, S) -> image embeddings (B, 256, S/16, S/16) and the high-resolution
        features [(B, 32, S/4, S/4), (B, 64, S/8, S/8)], as ``SAM2ImagePredictor.set_image``."""
        backbone_out = self.sam2.forward_image(images)
        _, feats, _, sizes = self.sam2._prepare_backbone_features(backbone_out)
        if self.sam2.directly_add_no_mem_embed:
            feats[-1] = feats[-1] + self.sam2.no_mem_embed
        maps = [f.permute(1, 2, 0).reshape(images.shape[0], -1, *size)
                for f, size in zip(feats, sizes)]
        return maps[-1], maps[:-1]

    def encode_prompts(self, inputs: Dict[str, Tensor]) -> Tensor:
        """Expressions (and their images) -> (N, 1, 256) prompt embeddings."""
        images = inputs['mm_img'][inputs['expr_image_index']]
        tokens = self.mm_encoder(images, inputs['text_ids'], inputs['text_padding_mask'])
        return self.projector(tokens, self.mm_encoder.num_vision_tokens,
                              inputs['text_padding_mask'])

    def decode_image(self, image_embed: Tensor, high_res: List[Tensor],
                     text_embeds: Optional[Tensor] = None,
                     points: Optional[Tuple[Tensor, Tensor]] = None,
                     boxes: Optional[Tensor] = None) -> LowResOutput:
        """One image's (1, C, h, w) features and the prompts of its N_i expressions -> (N_i, 1,
        4h, 4w) low-resolution logits and (N_i, 1) predicted IoUs.

        Args:
            image_embed / high_res: the image's :meth:`sam2_features`.
            text_embeds: (N_i, T, C) text prompts, or ``None``.
            points: (N_i, P, 2) xy in input pixels and (N_i, P) labels (1 foreground,
                0 background), or ``None``.
            boxes: (N_i, 4) xyxy in input pixels, or ``None``.

        SAM-2's prompt encoder embeds points and boxes as ``SAM2ImagePredictor`` gives them
        (box corners, labels 2 / 3, before the points, one padding point after them); the
        text is appended to those tokens. Text alone: no point, no padding (official EVF-SAM2).
        """
        encoder = self.sam2.sam_prompt_encoder
        if boxes is not None:
            corners = (boxes.reshape(-1, 2, 2),
                       torch.tensor([[2, 3]], device=boxes.device).expand(len(boxes), 2))
            points = corners if points is None else tuple(
                torch.cat([c, p.to(c.dtype)], dim=1) for c, p in zip(corners, points))
        # the decoder's own dtype for all its inputs: under DeepSpeed bf16 the frozen SAM-2
        # parts and buffers may keep another one (as SAMPromptHead does for SAM)
        dtype = self.sam2.sam_mask_decoder.iou_token.weight.dtype
        sparse, dense = encoder(points=points, boxes=None, masks=None)  # (1 | N_i, P', C)
        n = len(text_embeds) if text_embeds is not None else len(sparse)
        sparse = sparse.expand(n, -1, -1).to(dtype)
        if text_embeds is not None:
            sparse = torch.cat([sparse, text_embeds.to(dtype)], dim=1)
        masks, iou, _, _ = self.sam2.sam_mask_decoder(
            image_embeddings=image_embed.to(dtype),
            image_pe=encoder.get_dense_pe().to(dtype),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense.expand(n, -1, -1, -1).to(dtype),
            multimask_output=self.multimask_output,
            repeat_image=True,
            high_res_features=[h.to(dtype) for h in high_res])
        if self.multimask_output:  # the official image path: the best of three
            best = iou.argmax(dim=1)
            rows = torch.arange(n, device=iou.device)
            return masks[rows, best][:, None], iou[rows, best][:, None]
        return masks, iou

    def group_decoders(self, inputs: Dict[str, Tensor]) -> Tuple[List[DecodeGroup], torch.device]:
        """:meth:`decode_image` on each image's SAM-2 features (computed once per image,
        whatever the prompts): ``(text, points, boxes) -> (logits, IoUs)``."""
        image_embed, high_res = self.sam2_features(inputs['img'])
        return ([partial(self.decode_image, image_embed[i:i + 1], [h[i:i + 1] for h in high_res])
                 for i in range(image_embed.shape[0])], image_embed.device)

    # ------------------------------------------------------------------ outputs
    def postprocess_masks(self, low_res: Tensor, data_sample) -> Tensor:
        """One image's (N_i, 1, 4h, 4w) low-resolution logits -> (N_i, H, W) float32 logits at
        its original size: one bilinear resize, nothing cropped (the input was stretched)."""
        return F.interpolate(low_res.float(), tuple(data_sample.ori_shape[:2]), mode='bilinear',
                             align_corners=False)[:, 0]

    # EVF-SAM's BCE + dice per mask, as SAMPromptHead computes it, on this model's own
    # `loss_bce` / `loss_dice` (SAM-2's decoder is not a SAMPromptHead)
    mask_loss = SAMPromptHead.loss
