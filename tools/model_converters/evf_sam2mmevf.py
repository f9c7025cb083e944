"""Convert an official EVF-SAM checkpoint folder into an mmevf checkpoint.

``python tools/model_converters/evf_sam2mmevf.py SRC_FOLDER DST.pth``

SRC_FOLDER is a Hugging Face folder (``config.json`` + ``pytorch_model.bin`` /
``model.safetensors`` / shards + tokenizer files), e.g. a download of ``YxZhang/evf-sam``.
DST.pth receives ``{'state_dict': ..., 'meta': ...}`` with mmevf's ``EVFSAM`` keys, for
``load_from`` / ``tools/test.py``; the tokenizer files are copied to ``DST_tokenizer/`` next to
it. Existing outputs are never overwritten unless ``--force`` is given.
"""
import argparse
import os
import os.path as osp
import shutil

from mmengine.runner import save_checkpoint

from mmevf.checkpoint import ATOMIC_BACKEND_ARGS
from mmevf.checkpoint.layouts import (TOKENIZER_FILES, convert_evf_sam_state_dict,
                                      describe_evf_config, read_evf_sam_folder)


def tokenizer_dir(dst: str) -> str:
    return osp.splitext(dst)[0] + '_tokenizer'


def main() -> None:
    parser = argparse.ArgumentParser(description='Convert an EVF-SAM folder to mmevf')
    parser.add_argument('src', help='official EVF-SAM checkpoint folder')
    parser.add_argument('dst', help='output .pth file')
    parser.add_argument('--force', action='store_true', help='overwrite existing outputs')
    args = parser.parse_args()

    tok_dir = tokenizer_dir(args.dst)
    for existing in (args.dst, tok_dir):
        if osp.exists(existing) and not args.force:
            raise FileExistsError(f'{existing} exists; pass --force to overwrite it')
    state, config = read_evf_sam_folder(args.src)
    state_dict = convert_evf_sam_state_dict(state, source=args.src)
    arch = describe_evf_config(config)

    # atomically: a crash never leaves a half-written DST
    save_checkpoint(dict(state_dict=state_dict,
                         meta=dict(source=osp.abspath(args.src), evf_config=config, arch=arch)),
                    args.dst, backend_args=ATOMIC_BACKEND_ARGS)

    copied = [f for f in TOKENIZER_FILES if osp.isfile(osp.join(args.src, f))]
    if copied:
        os.makedirs(tok_dir, exist_ok=True)
        for name in copied:
            shutil.copy2(osp.join(args.src, name), osp.join(tok_dir, name))
    print(f'converted {len(state_dict)} tensors '
          f'({sum(v.numel() for v in state_dict.values()):,} parameters) -> {args.dst}')
    print('architecture: ' + ', '.join(f'{k}={v}' for k, v in arch.items()))
    print(f'tokenizer: {tok_dir} ({", ".join(copied)})' if copied else
          'tokenizer: none in the source folder; set the tokenizer folder in your config')


if __name__ == '__main__':
    main()
