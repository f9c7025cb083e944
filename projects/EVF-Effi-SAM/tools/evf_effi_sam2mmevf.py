"""Convert an official EVF-Effi-SAM checkpoint folder into an mmevf checkpoint.

``PYTHONPATH=. python projects/EVF-Effi-SAM/tools/evf_effi_sam2mmevf.py SRC_FOLDER DST.pth``

SRC_FOLDER is a Hugging Face folder as EVF-SAM's (``config.json`` with ``sam_scale`` ``small``
/ ``tiny`` + weights + tokenizer files). DST.pth receives ``{'state_dict': ..., 'meta': ...}``
with ``EVFEffiSAM``'s keys, for ``load_from`` with the project's configs; tokenizer files go to
``DST_tokenizer/``. Keys outside the layout are refused; outputs are not overwritten without
``--force``.
"""
import argparse
import importlib
import os
import os.path as osp
import shutil
import sys

from mmengine.runner import save_checkpoint

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..'))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmevf.checkpoint import ATOMIC_BACKEND_ARGS  # noqa: E402
from mmevf.checkpoint.layouts import TOKENIZER_FILES, read_evf_sam_folder  # noqa: E402

project = importlib.import_module('projects.EVF-Effi-SAM.evf_effi_sam')
ARCHS = {'small': ('vit_s', 'configs/evf-effi-sam-l_beit3-l_effisam-s.py'),
         'tiny': ('vit_t', 'configs/evf-effi-sam-b_beit3-b_effisam-ti.py')}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description='Convert an EVF-Effi-SAM folder to mmevf')
    parser.add_argument('src', help='official EVF-Effi-SAM checkpoint folder')
    parser.add_argument('dst', help='output .pth file')
    parser.add_argument('--force', action='store_true', help='overwrite existing outputs')
    args = parser.parse_args(argv)

    tok_dir = osp.splitext(args.dst)[0] + '_tokenizer'
    for existing in (args.dst, tok_dir):
        if osp.exists(existing) and not args.force:
            raise FileExistsError(f'{existing} exists; pass --force to overwrite it')
    state, config = read_evf_sam_folder(args.src)
    state_dict = project.convert_evf_effi_state_dict(state, source=args.src)
    arch = ARCHS.get(config.get('sam_scale'), (f'unknown sam_scale '
                                                f'{config.get("sam_scale")!r}', None))
    save_checkpoint(dict(state_dict=state_dict,
                         meta=dict(source=osp.abspath(args.src), evf_config=config,
                                   image_encoder=arch[0])),
                    args.dst, backend_args=ATOMIC_BACKEND_ARGS)
    copied = [f for f in TOKENIZER_FILES if osp.isfile(osp.join(args.src, f))]
    if copied:
        os.makedirs(tok_dir, exist_ok=True)
        for name in copied:
            shutil.copy2(osp.join(args.src, name), osp.join(tok_dir, name))
    print(f'converted {len(state_dict)} tensors '
          f'({sum(v.numel() for v in state_dict.values()):,} parameters) -> {args.dst}')
    print(f'image encoder: {arch[0]}' + (f' (config projects/EVF-Effi-SAM/{arch[1]})'
                                          if arch[1] else ''))


if __name__ == '__main__':
    main()
