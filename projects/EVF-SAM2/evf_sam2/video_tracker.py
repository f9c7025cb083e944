"""EVF-SAM2 on video: the text prompts the first frame, SAM-2's memory carries it on.

The official ``inference_video.py`` loads every frame up front (stretched to 1024², float32:
12 MB a frame) and SAM-2's video predictor keeps every frame's outputs. Here frames are read,
encoded and forgotten one at a time (:class:`~.video_frames.VideoFrames`), and only the memory
SAM-2 can still attend to is kept (the prompted frame plus the last
``max(num_maskmem * stride, max_obj_ptrs_in_encoder)`` frames), so memory stays flat with clip
length. Each frame's SAM-2 image embedding is computed once.
"""
from contextlib import contextmanager, nullcontext
from typing import Dict, Iterator, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .video_frames import Frame, VideoFrames


@contextmanager
def text_prompted(sam2: nn.Module, text_embeds: Tensor) -> Iterator[None]:
    """Within the block, SAM-2's prompt encoder is prompted by ``text_embeds`` (N, T, 256)
    instead of points, as the official EVF-SAM2's ``text_inputs``: no point (not even SAM-2's
    padding point), the text appended to the (empty) sparse prompts.

    SAM-2's own ``track_step`` then runs unchanged (memory conditioning, multimask selection,
    object-score gating, object pointer), by hooks on its prompt encoder.
    """
    encoder = sam2.sam_prompt_encoder

    def drop_points(module: nn.Module, args: tuple, kwargs: dict) -> Tuple[tuple, dict]:
        return args, dict(kwargs, points=None)

    def append_text(module: nn.Module, args: tuple, kwargs: dict,
                    output: Tuple[Tensor, Tensor]) -> Tuple[Tensor, Tensor]:
        sparse, dense = output
        return torch.cat([sparse, text_embeds.to(sparse.dtype)], dim=1), dense

    handles = [encoder.register_forward_pre_hook(drop_points, with_kwargs=True),
               encoder.register_forward_hook(append_text, with_kwargs=True)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class TrackedFrame(NamedTuple):
    """A frame's result: its mask logits (H, W) float32 at the frame's size (mask: > 0) and
    SAM-2's object-score logit (< 0: the object is judged absent and the mask is empty)."""
    frame: Frame
    logits: Tensor
    object_score: float


class EVFSAM2VideoTracker:
    """Segment what a text names on a clip's first frame and track it through the clip with
    SAM-2's memory, frames streamed.

    Frame 0 runs as the official ``add_new_text``: BEiT-3 + projector on the frame and the
    text give the prompt; SAM-2's ``track_step`` on the frame as an initial conditioning frame
    with that prompt (``text_prompted``), its mask encoded into memory as a prompted one (mask
    binarised, SAM-2's ``binarize_mask_from_pts_for_mem_enc`` of the video build). Later frames
    run ``track_step`` without prompt against the memory, as ``propagate_in_video``. Stored per
    frame as SAM-2's video predictor stores it: memory features in bfloat16, low-resolution
    masks, object pointer and score. Small holes are filled as the video build does
    (``fill_hole_area``) where ``sam2``'s CUDA extension is present (else skipped, as ``sam2``
    skips it).

    Args:
        inferencer: a ``TextSegInferencer`` of an ``EVFSAM2`` config (its pipeline, tokenizer,
            device and model are used).
        fill_hole_area: holes in the mask up to this area (low-resolution pixels) are filled
            (8, the official video build); 0: never.
    """

    def __init__(self, inferencer, fill_hole_area: int = 8) -> None:
        model = inferencer.model
        if not hasattr(model, 'sam2') or not hasattr(model, 'encode_prompts'):
            raise TypeError(f'video tracking needs an EVFSAM2 model, got '
                            f'{type(model).__name__}')
        self.inferencer = inferencer
        self.model = model
        self.sam2 = model.sam2
        self.fill_hole_area = fill_hole_area if _has_sam2_extension() else 0
        stride = int(self.sam2.memory_temporal_stride_for_eval)
        # farthest frame back that SAM-2's memory attention reads (masks, object pointers)
        self.memory_window = max(self.sam2.num_maskmem * stride + 1,
                                 int(self.sam2.max_obj_ptrs_in_encoder))

    # ------------------------------------------------------------------ inputs
    def preprocess(self, frame: Frame, text: Optional[str]) -> Dict[str, Tensor]:
        """A frame (and on frame 0 the text) through the config's test pipeline and the data
        preprocessor -> the model's inputs (``img`` (1, 3, S, S); with text ``mm_img``,
        ``text_ids``, ...), exactly as the image path prepares an image."""
        item = dict(img=frame.image, name=f'frame {frame.name}', stem=frame.name,
                    img_id=frame.index, img_path=None, text=[text] if text else [],
                    points=[None] if text else [], boxes=[None] if text else [])
        data = next(iter(self.inferencer.preprocess([item], batch_size=1)))
        return self.model.data_preprocessor(data, False)['inputs']

    # ------------------------------------------------------------------ tracking
    @torch.inference_mode()
    def track(self, frames: VideoFrames, text: str) -> Iterator[TrackedFrame]:
        """Yield every frame's result in order, one frame in memory at a time."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f'empty text for video {frames.path}')
        self.sam2.eval()
        # SAM-2's output_dict; kept as an attribute to be looked at, it is rebuilt every call
        self.memory = memory = dict(cond_frame_outputs={}, non_cond_frame_outputs={})
        num_frames = len(frames)
        for frame in frames:
            first = frame.index == 0
            inputs = self.preprocess(frame, text if first else None)
            low_res, object_score = self.step(inputs, frame.index, num_frames, memory,
                                              self.model.encode_prompts(inputs) if first else None)
            logits = F.interpolate(low_res.float(), size=frame.image.shape[:2],
                                   mode='bilinear', align_corners=False)[0, 0]
            yield TrackedFrame(frame, logits, object_score)

    def step(self, inputs: Dict[str, Tensor], index: int, num_frames: int,
             memory: Dict[str, dict], prompt: Optional[Tensor]) -> Tuple[Tensor, float]:
        """SAM-2 on one frame: the (1, 1, S/4, S/4) low-resolution mask logits and the object
        score; ``memory`` (SAM-2's ``output_dict``) gets the frame's entry and loses the ones
        out of reach. ``prompt`` (1, 1, 256): frame 0's text prompt."""
        sam2 = self.sam2
        image = inputs['img']
        _, feats, pos, sizes = sam2._prepare_backbone_features(sam2.forward_image(image))
        prompted = prompt is not None
        with text_prompted(sam2, prompt) if prompted else nullcontext():
            out = sam2.track_step(
                frame_idx=index, is_init_cond_frame=prompted, current_vision_feats=feats,
                current_vision_pos_embeds=pos, feat_sizes=sizes, point_inputs=None,
                mask_inputs=None, output_dict=memory, num_frames=num_frames,
                run_mem_encoder=not prompted)
        low_res = out['pred_masks']
        if self.fill_hole_area > 0:
            from sam2.utils.misc import fill_holes_in_mask_scores
            low_res = fill_holes_in_mask_scores(low_res, self.fill_hole_area)
        if prompted:
            # as the video predictor's preflight: the stored mask, upsampled, into memory
            high_res = F.interpolate(low_res, size=image.shape[-2:], mode='bilinear',
                                     align_corners=False)
            binarize = sam2.binarize_mask_from_pts_for_mem_enc
            sam2.binarize_mask_from_pts_for_mem_enc = True  # the video build's setting
            try:
                maskmem, maskmem_pos = sam2._encode_new_memory(
                    current_vision_feats=feats, feat_sizes=sizes, pred_masks_high_res=high_res,
                    object_score_logits=out['object_score_logits'], is_mask_from_pts=True)
            finally:
                sam2.binarize_mask_from_pts_for_mem_enc = binarize
        else:
            maskmem, maskmem_pos = out['maskmem_features'], out['maskmem_pos_enc']
        entry = dict(maskmem_features=maskmem.to(torch.bfloat16), maskmem_pos_enc=maskmem_pos,
                     pred_masks=low_res, obj_ptr=out['obj_ptr'],
                     object_score_logits=out['object_score_logits'])
        if prompted:
            memory['cond_frame_outputs'][index] = entry
        else:
            memory['non_cond_frame_outputs'][index] = entry
            stale = [t for t in memory['non_cond_frame_outputs']
                     if t <= index - self.memory_window]
            for t in stale:
                del memory['non_cond_frame_outputs'][t]
        return low_res, float(out['object_score_logits'].flatten()[0])


def _has_sam2_extension() -> bool:
    """Whether ``sam2``'s CUDA extension (connected components for hole filling) is built."""
    try:
        from sam2 import _C  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()
