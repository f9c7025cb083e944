"""Convert an official EVF-SAM checkpoint folder into an mmevf checkpoint.

``python tools/model_converters/evf_sam2mmevf.py SRC_FOLDER DST.pth``

SRC_FOLDER is a Hugging Face folder (``config.json`` + ``pytorch_model.bin`` /
``model.safetensors`` / shards + tokenizer files), e.g. a download of ``YxZhang/evf-sam``.
DST.pth receives ``{'state_dict': ..., 'meta': ...}`` with mmevf's ``EVFSAM`` keys, for
``load_from`` / ``tools/test.py``; the tokenizer files are copied to ``DST_tokenizer/`` next to
it. Existing outputs are never overwritten unless ``--force`` is given.
"""
import argparse

from mmevf.checkpoint.folder_converter import convert_evf_folder, print_tokenizer
from mmevf.checkpoint.layouts import convert_evf_sam_state_dict, describe_evf_config


def main() -> None:
    parser = argparse.ArgumentParser(description='Convert an EVF-SAM folder to mmevf')
    parser.add_argument('src', help='official EVF-SAM checkpoint folder')
    parser.add_argument('dst', help='output .pth file')
    parser.add_argument('--force', action='store_true', help='overwrite existing outputs')
    args = parser.parse_args()

    _, config, tok_dir, copied = convert_evf_folder(
        args.src, args.dst, convert_evf_sam_state_dict,
        lambda config: dict(arch=describe_evf_config(config)), args.force)
    arch = describe_evf_config(config)
    print('architecture: ' + ', '.join(f'{k}={v}' for k, v in arch.items()))
    print_tokenizer(tok_dir, copied)


if __name__ == '__main__':
    main()
