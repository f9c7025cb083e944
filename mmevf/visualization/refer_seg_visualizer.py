"""Drawing referring-segmentation predictions: the mask over the image, the text on top."""
import os.path as osp
import textwrap
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmengine.visualization import Visualizer

from mmevf.evaluation.functional import pairwise_mask_iou
from mmevf.registry import VISUALIZERS

# RGB; neither is a SynthRef object colour (red, green, blue, yellow, purple, white on grey)
PRED_COLOR = (0, 220, 255)   # cyan fill
GT_COLOR = (255, 0, 200)     # magenta outline
LEGEND = (('prediction', PRED_COLOR), ('ground truth', GT_COLOR))
# an expression's point / box prompts: foreground points green, background red, the box yellow
POINT_COLORS = {1: (40, 220, 40), 0: (230, 40, 40)}
BOX_COLOR = (255, 220, 0)
# the label of an expression a no-target head says names nothing (its mask is empty)
NO_TARGET_COLOR = (200, 30, 30)  # dark red box, white text
# ground-truth fills of a dataset's expressions (tools/analysis/browse_dataset.py), one colour
# per expression of an image, cycled: bright hues apart from the prediction's cyan
EXPRESSION_COLORS = ((255, 140, 0), (230, 0, 230), (120, 255, 0), (0, 120, 255),
                     (255, 230, 0), (150, 60, 255), (0, 200, 140), (255, 90, 110))
# the translucent box behind every text
_TEXT_BOX = dict(facecolor='black', alpha=0.6, pad=2, edgecolor='none')


def no_target_label(score: Optional[float] = None) -> str:
    """The label drawn for an expression without target: ``'no target (score 0.93)'``, or
    ``'no target'`` without a score (a dataset's annotation)."""
    return 'no target' if score is None else f'no target (score {score:.2f})'


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two (H, W) bool masks; both empty counts 1.0 (as ``ReferSegMetric``'s gIoU),
    by the metrics' own pairwise IoU."""
    masks = torch.from_numpy(np.stack([pred, gt]).astype(bool))
    return float(pairwise_mask_iou(masks)[0, 1])


def mask_outline(mask: np.ndarray, thickness: int = 2) -> np.ndarray:
    """(H, W) bool mask -> (H, W) bool band of ``thickness`` pixels inside its border."""
    import cv2
    mask = mask.astype(np.uint8)
    kernel = np.ones((2 * thickness + 1, 2 * thickness + 1), np.uint8)
    # pad with background so that objects touching the image border are outlined there too
    eroded = cv2.erode(np.pad(mask, 1), kernel)[1:-1, 1:-1]
    return (mask > 0) & (eroded == 0)


def make_contact_sheet(rows: Sequence[Sequence[np.ndarray]], gap: int = 8,
                       fill: Tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Pictures -> one grid: row r holds ``rows[r]`` left to right.

    Every cell is (Hc, Wc) = the largest picture; smaller pictures sit in its top-left corner,
    short rows leave ``fill``. Returns (R·Hc + (R+1)·gap, C·Wc + (C+1)·gap, 3) uint8, C being
    the longest row.
    """
    pictures = [p for row in rows for p in row]
    if not pictures:
        raise ValueError('a contact sheet needs at least one picture')
    cell_h = max(p.shape[0] for p in pictures)
    cell_w = max(p.shape[1] for p in pictures)
    num_cols = max(len(row) for row in rows)
    sheet = np.empty((len(rows) * (cell_h + gap) + gap, num_cols * (cell_w + gap) + gap, 3),
                     np.uint8)
    sheet[:] = fill
    for r, row in enumerate(rows):
        for c, picture in enumerate(row):
            y, x = gap + r * (cell_h + gap), gap + c * (cell_w + gap)
            sheet[y:y + picture.shape[0], x:x + picture.shape[1]] = picture
    return sheet


def _numpy(value) -> Optional[np.ndarray]:
    return None if value is None else np.asarray(
        value.cpu() if torch.is_tensor(value) else value, np.float64)


@VISUALIZERS.register_module()
class ReferSegVisualizer(Visualizer):
    """One picture per expression: the predicted mask filled in cyan, the ground truth outlined
    in magenta, a legend naming both (bottom left), the expression and — with ground truth —
    the mask IoU written in the top-left corner. :meth:`draw_annotation` draws a dataset's
    expression (its ground-truth mask filled) in the same style.

    Args:
        name: the instance name (visualizers are per-process singletons by name).
        min_long_side: pictures of smaller images are upscaled to this long side (the IoU is
            measured before, at the image's size); ``None`` keeps the image size (the
            inferencer's overlays line up with the image). ``ReferSegVisualizationHook`` sets
            it for the pictures it draws.
        pred_alpha: opacity of the prediction's fill.
        **kwargs: ``Visualizer``'s (``vis_backends``, ``save_dir``, ...).
    """

    def __init__(self, name: str = 'visualizer', min_long_side: Optional[int] = None,
                 pred_alpha: float = 0.5, **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.min_long_side = min_long_side
        self.pred_alpha = pred_alpha
        self.drawings: List[np.ndarray] = []  # the pictures of the last add_datasample call

    def _upscale(self, image: np.ndarray, masks: Sequence[Optional[np.ndarray]]) -> tuple:
        """Upscale the image (bilinear) and masks (nearest) to ``min_long_side`` if smaller."""
        h, w = image.shape[:2]
        if self.min_long_side is None or max(h, w) >= self.min_long_side:
            return image, list(masks)
        scale = self.min_long_side / max(h, w)
        size = (round(w * scale), round(h * scale))
        image = mmcv.imresize(image, size, interpolation='bilinear')
        masks = [None if m is None else
                 mmcv.imresize(m.astype(np.uint8), size, interpolation='nearest').astype(bool)
                 for m in masks]
        return image, masks

    def draw_prompts(self, points: Optional[np.ndarray], labels: Optional[np.ndarray],
                     box: Optional[np.ndarray], scale: float = 1.) -> None:
        """Draw one expression's point / box prompts on the current image: (P, 2) xy points
        with (P,) labels (1 foreground, green; 0 background, red), each ringed in white, and
        a (4,) xyxy box (yellow); in image pixels, times ``scale``."""
        thickness = max(1, round(max(self.width, self.height) / 256))  # pixels
        to_points = 72 / self.dpi  # matplotlib sizes are in points
        if box is not None:
            self.draw_bboxes(np.asarray(box, np.float64)[None] * scale, edge_colors=BOX_COLOR,
                             line_widths=thickness * to_points, alpha=1.0)
        if points is not None and len(points):
            xy = np.asarray(points, np.float64).reshape(-1, 2) * scale
            radius = 3 * thickness + 2
            # scatter sizes are marker areas in points squared
            self.draw_points(xy, colors='white', sizes=np.full(len(xy), (
                (2 * (radius + thickness)) * to_points)**2))
            self.draw_points(xy, colors=[POINT_COLORS[int(v)] for v in np.asarray(labels)],
                             sizes=np.full(len(xy), (2 * radius * to_points)**2))

    def draw_expression(self, image: np.ndarray, text: str,
                        pred_mask: Optional[np.ndarray] = None,
                        gt_mask: Optional[np.ndarray] = None,
                        points: Optional[np.ndarray] = None,
                        point_labels: Optional[np.ndarray] = None,
                        box: Optional[np.ndarray] = None,
                        no_target_score: Optional[float] = None) -> np.ndarray:
        """(H, W, 3) RGB uint8 image + (H, W) bool masks -> (H', W', 3) RGB drawing, H' x W'
        upscaled to ``min_long_side`` if the image is smaller, else H x W. The expression's
        prompts, if given, are drawn too (:meth:`draw_prompts`; (P, 2) ``points`` with (P,)
        ``point_labels``, a (4,) ``box``, in image pixels). ``no_target_score`` (an expression
        predicted to name nothing, its no-target probability) writes
        :func:`no_target_label` in the middle of the picture, white on dark red."""
        # the IoU written is the metric's, at the image's own size
        iou = None if pred_mask is None or gt_mask is None else mask_iou(pred_mask, gt_mask)
        width = image.shape[1]
        image, (pred, gt) = self._upscale(image, (pred_mask, gt_mask))
        h, w = image.shape[:2]
        font_size, font_px = self._font(h, w)
        self.set_image(image)
        if pred is not None and pred.any():
            self.draw_binary_masks(pred.astype(bool)[None], colors=[PRED_COLOR],
                                   alphas=self.pred_alpha)
        canvas = self.get_image().copy()
        if gt is not None:
            # an outline keeps the prediction's fill (and the image) visible inside it
            canvas[mask_outline(gt, max(1, round(max(h, w) / 256)))] = GT_COLOR
        # legend swatches (exact colours, bottom left) drawn in pixels; labels right of them
        legend = [entry for entry, mask in zip(LEGEND, (pred_mask, gt_mask)) if mask is not None]
        pad = max(4, font_px // 3)
        label_positions = []
        for k, (_, color) in enumerate(legend):
            y0 = h - pad - (len(legend) - k) * (font_px + pad)
            canvas[y0 - 1:y0 + font_px + 1, pad - 1:pad + font_px + 1] = 0  # dark border
            canvas[y0:y0 + font_px, pad:pad + font_px] = color
            label_positions.append([pad * 2 + font_px, y0 + font_px / 2])
        self.set_image(canvas)
        if points is not None or box is not None:  # under the caption
            self.draw_prompts(points, point_labels, box, w / width)

        self._draw_caption(text, font_size, font_px, None if iou is None else f'IoU {iou:.2f}')
        if legend:
            self.draw_texts([label for label, _ in legend], np.array(label_positions),
                            colors='white', font_sizes=font_size, vertical_alignments='center',
                            bboxes=[_TEXT_BOX] * len(legend))
        if no_target_score is not None:
            self._draw_no_target(no_target_label(no_target_score), font_size)
        return self.get_image()

    def draw_annotation(self, image: np.ndarray, text: str, mask: np.ndarray,
                        color: Tuple[int, int, int], no_target: bool = False,
                        alpha: float = 0.5) -> np.ndarray:
        """One annotated expression as a dataset gives it: (H, W, 3) RGB uint8 image + its
        (H, W) bool ground-truth mask -> (H', W', 3) RGB drawing (sized as
        :meth:`draw_expression`'s): the mask filled in ``color`` with opacity ``alpha`` and
        outlined in black, the expression written in the top-left corner and, for an
        expression annotated as naming nothing (``no_target``), ``'no target'`` in the middle
        as :meth:`draw_expression` labels a no-target prediction."""
        image, (mask, ) = self._upscale(image, (mask, ))
        h, w = image.shape[:2]
        font_size, font_px = self._font(h, w)
        self.set_image(image)
        if mask.any():
            self.draw_binary_masks(mask.astype(bool)[None], colors=[color], alphas=alpha)
            # the fill vanishes on an object of its own colour; the outline does not
            canvas = self.get_image().copy()
            canvas[mask_outline(mask, max(1, round(max(h, w) / 256)))] = 0
            self.set_image(canvas)
        self._draw_caption(text, font_size, font_px)
        if no_target:
            self._draw_no_target(no_target_label(), font_size)
        return self.get_image()

    def _font(self, h: int, w: int) -> Tuple[int, int]:
        """The text size of an (h, w) picture: (points, pixels)."""
        font_size = max(8, max(h, w) // 36)  # points; ~20 px at 512
        return font_size, round(font_size * self.dpi / 72)

    def _draw_caption(self, text: str, font_size: int, font_px: int,
                      extra_line: Optional[str] = None) -> None:
        """``text`` wrapped to the current image's width (and ``extra_line`` under it), white
        on a translucent box in the top-left corner."""
        chars_per_line = max(12, int(self.width / (0.6 * font_px)))
        caption = '\n'.join(textwrap.wrap(text, chars_per_line)) or ' '
        if extra_line is not None:
            caption += f'\n{extra_line}'
        self.draw_texts(caption, np.array([4, 4]), colors='white', font_sizes=font_size,
                        vertical_alignments='top', bboxes=_TEXT_BOX)

    def _draw_no_target(self, label: str, font_size: int) -> None:
        """``label`` in the middle of the current image, white on an opaque dark red box: where
        the mask would be, as an empty fill alone reads as "the model failed"."""
        self.draw_texts(
            label, np.array([self.width / 2, self.height / 2]), colors='white',
            font_sizes=font_size, vertical_alignments='center', horizontal_alignments='center',
            bboxes=dict(facecolor=tuple(c / 255 for c in NO_TARGET_COLOR), alpha=1.0, pad=3,
                        edgecolor='white'))

    def add_datasample(self, name: str, image: np.ndarray, data_sample=None,
                       draw_gt: bool = True, draw_pred: bool = True, show: bool = False,
                       wait_time: float = 0, out_file: Optional[str] = None,
                       step: int = 0) -> None:
        """Draw every expression of ``data_sample``, with its point / box prompts if the
        sample carries them (``prompt_points``, ``prompt_point_labels``, ``prompt_boxes``: one
        entry or None per expression, original pixels, as ``TextSegInferencer`` sets them);
        with ``out_file`` ``dir/name.png`` the pictures go to ``dir/name_0.png``,
        ``dir/name_1.png``, ... else to the backends. The pictures stay in ``self.drawings``
        until the next call. Predictions of a no-target head (``pred_instances.no_target`` /
        ``no_target_scores``) label their no-target expressions (:meth:`draw_expression`)."""
        preds = data_sample.pred_instances.masks.cpu().numpy() if (
            draw_pred and 'pred_instances' in data_sample) else None
        count = len(data_sample.text)
        no_target_scores: List[Optional[float]] = [None] * count
        if preds is not None and 'no_target' in data_sample.pred_instances:
            flags = data_sample.pred_instances.no_target.cpu().tolist()
            probs = data_sample.pred_instances.no_target_scores.float().cpu().tolist()
            no_target_scores = [p if flag else None for flag, p in zip(flags, probs)]
        gts = data_sample.gt_masks.to_ndarray().astype(bool) if (
            draw_gt and 'gt_masks' in data_sample) else None
        points, labels, boxes = (data_sample.get(field) or [None] * count for field in (
            'prompt_points', 'prompt_point_labels', 'prompt_boxes'))
        self.drawings = []
        for i, text in enumerate(data_sample.text):
            drawing = self.draw_expression(image, text, None if preds is None else preds[i],
                                           None if gts is None else gts[i],
                                           _numpy(points[i]), _numpy(labels[i]),
                                           _numpy(boxes[i]), no_target_scores[i])
            self.drawings.append(drawing)
            if show:
                self.show(drawing, win_name=f'{name}: {text}', wait_time=wait_time)
            if out_file is not None:
                stem, ext = osp.splitext(out_file)
                mmcv.imwrite(drawing[..., ::-1], f'{stem}_{i}{ext or ".png"}')
            else:
                self.add_image(f'{name}_{i}', drawing, step)
