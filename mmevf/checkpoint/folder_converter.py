"""What every converter of an official EVF folder (EVF-SAM, and the projects' EVF-SAM2 /
EVF-Effi-SAM) does around its key mapping: refuse to overwrite, read the folder, write the
mmevf checkpoint atomically, copy the tokenizer next to it."""
import os
import os.path as osp
import shutil
from typing import Callable, Dict, List, Tuple

from mmengine.runner import save_checkpoint

from .atomic_backend import ATOMIC_BACKEND_ARGS
from .layouts import TOKENIZER_FILES, read_evf_sam_folder

StateDict = Dict[str, object]


def tokenizer_dir(dst: str) -> str:
    """Where the tokenizer of the checkpoint ``dst`` goes: ``DST_tokenizer/`` beside it."""
    return osp.splitext(dst)[0] + '_tokenizer'


def convert_evf_folder(src: str, dst: str, convert: Callable[..., StateDict],
                       meta: Callable[[dict], dict], force: bool = False
                       ) -> Tuple[StateDict, dict, str, List[str]]:
    """Convert the official folder ``src`` into the mmevf checkpoint ``dst``.

    Args:
        src: folder with ``config.json``, the weights and the tokenizer files.
        dst: output ``.pth``; the tokenizer files go to :func:`tokenizer_dir`.
        convert: ``convert(state, source=src)`` -> mmevf state dict (refusing unknown keys).
        meta: the folder's ``config.json`` -> extra ``meta`` entries of the checkpoint.
        force: overwrite existing outputs (else ``FileExistsError``).

    Returns:
        The state dict, the folder's config, the tokenizer folder and the files copied there.
    """
    tok_dir = tokenizer_dir(dst)
    for existing in (dst, tok_dir):
        if osp.exists(existing) and not force:
            raise FileExistsError(f'{existing} exists; pass --force to overwrite it')
    state, config = read_evf_sam_folder(src)
    state_dict = convert(state, source=src)
    # atomically: a crash never leaves a half-written DST
    save_checkpoint(dict(state_dict=state_dict,
                         meta=dict(source=osp.abspath(src), evf_config=config, **meta(config))),
                    dst, backend_args=ATOMIC_BACKEND_ARGS)
    copied = [f for f in TOKENIZER_FILES if osp.isfile(osp.join(src, f))]
    if copied:
        os.makedirs(tok_dir, exist_ok=True)
        for name in copied:
            shutil.copy2(osp.join(src, name), osp.join(tok_dir, name))
    print(f'converted {len(state_dict)} tensors '
          f'({sum(v.numel() for v in state_dict.values()):,} parameters) -> {dst}')
    return state_dict, config, tok_dir, copied


def print_tokenizer(tok_dir: str, copied: List[str]) -> None:
    print(f'tokenizer: {tok_dir} ({", ".join(copied)})' if copied else
          'tokenizer: none in the source folder; set the tokenizer folder in your config')
