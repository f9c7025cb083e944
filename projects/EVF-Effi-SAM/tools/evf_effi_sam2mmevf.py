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
import os.path as osp
import sys


ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..'))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmevf.checkpoint.folder_converter import convert_evf_folder  # noqa: E402

project = importlib.import_module('projects.EVF-Effi-SAM.evf_effi_sam')
ARCHS = {'small': ('vit_s', 'configs/evf-effi-sam-l_beit3-l_effisam-s.py'),
         'tiny': ('vit_t', 'configs/evf-effi-sam-b_beit3-b_effisam-ti.py')}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description='Convert an EVF-Effi-SAM folder to mmevf')
    parser.add_argument('src', help='official EVF-Effi-SAM checkpoint folder')
    parser.add_argument('dst', help='output .pth file')
    parser.add_argument('--force', action='store_true', help='overwrite existing outputs')
    args = parser.parse_args(argv)

    def image_encoder(config: dict) -> tuple:
        scale = config.get('sam_scale')
        return ARCHS.get(scale, (f'unknown sam_scale {scale!r}', None))

    _, config, _, _ = convert_evf_folder(
        args.src, args.dst, project.convert_evf_effi_state_dict,
        lambda config: dict(image_encoder=image_encoder(config)[0]), args.force)
    arch = image_encoder(config)
    print(f'image encoder: {arch[0]}' + (f' (config projects/EVF-Effi-SAM/{arch[1]})'
                                          if arch[1] else ''))


if __name__ == '__main__':
    main()
