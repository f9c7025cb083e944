"""Atomic checkpoint writes, so a crash while saving never corrupts a checkpoint.

Registered as mmengine file backend ``'atomic_local'`` (no URI prefix: mmengine's own local
backend stays what every other file write uses). Checkpoints select it through
``backend_args=ATOMIC_BACKEND_ARGS``: the ``CheckpointHook`` of
``configs/_base_/default_runtime.py`` and the converters in ``tools/model_converters/``."""
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

import mmengine
from mmengine.fileio import LocalBackend, register_backend


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose ``put`` writes a temporary file in the target's
    folder, flushes it to disk and renames it over the target (``os.replace`` is atomic):
    a checkpoint file is either the old one or the complete new one, never half written."""

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        self.put(obj.encode(encoding), filepath)

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        folder = osp.dirname(osp.abspath(filepath))
        mmengine.mkdir_or_exist(folder)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{osp.basename(filepath)}.',
                                   suffix='.tmp')
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filepath)
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise


register_backend('atomic_local', AtomicLocalBackend, force=True)
ATOMIC_BACKEND_ARGS = dict(backend='atomic_local')
