"""SynthRef clips: one SynthRef scene whose named object moves, for video propagation.

Layout written under ``out``::

    frames/00000.jpg ...   the frames (JPEG, numbered as SAM-2's video loader expects)
    masks/00000.png ...    the named object's true mask per frame (0 / 255)
    clip.json              the expression, frame and mask files, the object's path

The scene is placed as a SynthRef image is (``place_objects``); the target is an object that
``the {colour} {shape}`` singles out on frame 0. It moves on a straight line (a fixed step
per frame, bouncing off the borders) while the others stay; every frame gets fresh background
noise, as a camera's would.
"""
import json
import os
import os.path as osp
from typing import Dict, Tuple

import cv2
import numpy as np

from .generator import describe, place_objects, render, shape_polygon


def _pick_target(objects: list) -> Tuple[int, str]:
    """The first object with a colour-and-shape expression, and that expression."""
    for i, o in enumerate(objects):
        expression = f'the {o["color"]} {o["shape"]}'
        if expression in describe(objects, i):
            return i, expression
    raise ValueError('no object of the scene is named by its colour and shape')


def make_synthref_clip(out: str, num_frames: int = 8, seed: int = 0,
                       size: Tuple[int, int] = (320, 240), step: float = 6.0) -> Dict:
    """Write a clip of ``num_frames`` frames of ``size`` (width, height) to ``out``; the target
    moves ``step`` pixels a frame. Deterministic in ``seed``. Returns the clip.json content."""
    if num_frames < 1:
        raise ValueError(f'num_frames must be positive, got {num_frames}')
    width, height = size
    rng = np.random.default_rng(seed)
    for _ in range(100):  # a scene with a target named by colour and shape
        objects = place_objects(rng, width, height)
        try:
            index, expression = _pick_target(objects)
            break
        except ValueError:
            continue
    else:
        raise RuntimeError(f'no SynthRef scene with a nameable object for seed {seed}')
    target = objects[index]
    angle = rng.uniform(0, 2 * np.pi)
    velocity = step * np.array([np.cos(angle), np.sin(angle)])
    os.makedirs(osp.join(out, 'frames'), exist_ok=True)
    os.makedirs(osp.join(out, 'masks'), exist_ok=True)
    frames, masks, path = [], [], []
    margin = target['r'] * 1.3
    for t in range(num_frames):
        target['polygon'] = shape_polygon(target['shape'], target['cx'], target['cy'],
                                          target['r'])
        name = f'{t:05d}'
        cv2.imwrite(osp.join(out, 'frames', f'{name}.jpg'), render(rng, width, height, objects),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        mask = np.zeros((height, width), np.uint8)
        cv2.fillPoly(mask, [np.round(target['polygon']).astype(np.int32)], 255)
        cv2.imwrite(osp.join(out, 'masks', f'{name}.png'), mask)
        frames.append(f'frames/{name}.jpg')
        masks.append(f'masks/{name}.png')
        path.append([round(target['cx'], 2), round(target['cy'], 2)])
        # next position: bounce off the borders
        for axis, key, limit in ((0, 'cx', width), (1, 'cy', height)):
            value = target[key] + velocity[axis]
            if not margin <= value <= limit - margin:
                velocity[axis] = -velocity[axis]
                value = target[key] + velocity[axis]
            target[key] = float(value)
    clip = dict(expression=expression, width=width, height=height, frames=frames, masks=masks,
                target_path=path, seed=seed)
    with open(osp.join(out, 'clip.json'), 'w') as f:
        json.dump(clip, f, indent=1)
    return clip
