"""The frames of a clip, decoded one at a time: a folder of images or a video file."""
import os
import os.path as osp
from typing import Iterator, NamedTuple

import mmcv
import numpy as np

from mmevf.apis.inference_inputs import IMAGE_SUFFIXES


class Frame(NamedTuple):
    """One frame of a clip: its index, a name for files and messages (``00012`` or the image
    file's stem) and the (H, W, 3) uint8 BGR image."""
    index: int
    name: str
    image: np.ndarray


def _frame_order(name: str) -> tuple:
    """Numbered frames in numeric order (``2.jpg`` before ``10.jpg``), others by name."""
    stem = osp.splitext(name)[0]
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


class VideoFrames:
    """The frames of a clip, decoded one at a time: a folder of images (numbered frames in
    numeric order, as SAM-2's loader; any other names sorted) or a video file (read by
    ``mmcv.VideoReader``). A frame that does not decode raises a ``ValueError`` naming it.

    Args:
        path: a folder of frames or a video file.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        if osp.isdir(path):
            self.files = sorted((name for name in os.listdir(path)
                                 if name.lower().endswith(IMAGE_SUFFIXES)), key=_frame_order)
            if not self.files:
                raise FileNotFoundError(f'no frame ({", ".join(IMAGE_SUFFIXES)}) in folder '
                                        f'{path}')
            self.reader = None
            self.fps = 25.0
            return
        if not osp.isfile(path):
            raise FileNotFoundError(f'video {path} does not exist')
        self.files = None
        try:
            self.reader = mmcv.VideoReader(path)
        except AssertionError:  # mmcv asserts that OpenCV opened it
            self.reader = None
        if self.reader is None or self.reader.frame_cnt <= 0:
            raise ValueError(f'cannot read video {path}: not a video file OpenCV can decode, '
                             f'or corrupt')
        self.fps = float(self.reader.fps) or 25.0

    def __len__(self) -> int:
        return len(self.files) if self.files is not None else self.reader.frame_cnt

    @property
    def is_video_file(self) -> bool:
        return self.reader is not None

    def __iter__(self) -> Iterator[Frame]:
        if self.files is not None:
            for i, name in enumerate(self.files):
                file = osp.join(self.path, name)
                try:
                    image = mmcv.imread(file)
                except Exception as err:  # noqa: BLE001  (any decoder failure names the file)
                    raise ValueError(f'cannot decode frame {file}: {err}') from err
                if image is None:
                    raise ValueError(f'cannot decode frame {file}: not an image file, or '
                                     f'corrupt')
                yield Frame(i, osp.splitext(name)[0], image)
            return
        for i in range(len(self)):
            image = self.reader.read()
            if image is None:
                raise ValueError(f'cannot decode frame {i} of video {self.path} (of '
                                 f'{len(self)} frames): the file is truncated or corrupt')
            yield Frame(i, f'{i:05d}', image)
