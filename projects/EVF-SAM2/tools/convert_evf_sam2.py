"""Convert an official EVF-SAM2 checkpoint folder into an mmevf ``EVFSAM2`` checkpoint.

``PYTHONPATH=. python projects/EVF-SAM2/tools/convert_evf_sam2.py SRC_FOLDER DST.pth [--force]``

SRC_FOLDER is a Hugging Face folder (``config.json`` + ``pytorch_model.bin`` /
``model.safetensors`` / shards + tokenizer files), e.g. a download of ``YxZhang/evf-sam2`` or
``YxZhang/evf-sam2-multitask``. Keys: ``visual_model.*`` (SAM-2, 900 tensors for Hiera-L, with
``CXBlock.gamma`` saved as ``.weight``) -> ``sam2.*``; ``mm_extractor.beit3.*`` ->
``mm_encoder.*``; ``text_hidden_fcs.0.*`` -> ``projector.mlp.*``. Any other key, and SAM-1 /
EfficientSAM checkpoints, are refused. DST.pth receives ``{'state_dict': ..., 'meta': ...}``
for ``load_from`` / ``--weights``; the tokenizer files are copied to ``DST_tokenizer/``.
Existing outputs are never overwritten unless ``--force`` is given.
"""
import argparse
import importlib
from typing import Dict, List, Optional

from mmevf.checkpoint.folder_converter import convert_evf_folder, print_tokenizer

# the project package by its one name, with the repository root importable (PYTHONPATH=.);
# importing it registers EVFSAM2 and SAM2Resize
evf_sam2 = importlib.import_module('projects.EVF-SAM2.evf_sam2')

SAM2_CONFIGS = {'large': 'configs/sam2/sam2_hiera_l.yaml', 'tiny': 'configs/sam2/sam2_hiera_t.yaml',
                'small': 'configs/sam2/sam2_hiera_s.yaml',
                'base_plus': 'configs/sam2/sam2_hiera_b+.yaml'}


def describe(config: dict) -> Dict[str, str]:
    """The architecture an official ``config.json`` describes, in mmevf terms."""
    scale = config.get('sam_scale', 'large')
    return dict(sam2=SAM2_CONFIGS.get(scale, f'unsupported sam_scale {scale!r}'),
                mm_encoder=config.get('mm_extractor_scale', 'large'),
                hidden_size=str(config.get('hidden_size')), out_dim=str(config.get('out_dim', 256)))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description='Convert an EVF-SAM2 folder to mmevf')
    parser.add_argument('src', help='official EVF-SAM2 checkpoint folder')
    parser.add_argument('dst', help='output .pth file')
    parser.add_argument('--force', action='store_true', help='overwrite existing outputs')
    args = parser.parse_args(argv)

    _, config, tok_dir, copied = convert_evf_folder(
        args.src, args.dst, evf_sam2.convert_evf_sam2_state_dict,
        lambda config: dict(arch=describe(config)), args.force)
    arch = describe(config)
    print('architecture: ' + ', '.join(f'{k}={v}' for k, v in arch.items()))
    print_tokenizer(tok_dir, copied)


if __name__ == '__main__':
    main()
