"""Write the SAM part of an mmevf checkpoint in SAM's own layout (as ``sam_vit_b_01ec64.pth``).

``python tools/model_converters/mmevf2sam.py SRC.pth DST.pth [--force]``

SRC is an MMEngine checkpoint of an mmevf model with a SAM inside (``SAMPretrainer``,
``EVFSAM``, ``DITSAM``). DST holds a plain state dict with SAM's keys (``image_encoder.*``,
``prompt_encoder.*``, ``mask_decoder.*``), which configs load through ``init_cfg=dict(type='StrictPretrained', layout='sam', ...)`` exactly
as the released SAM weights, and ``segment_anything``'s ``Sam`` loads strictly when built with
the same sizes. DST is written atomically and never overwritten unless ``--force`` is given.
"""
import argparse
import os.path as osp

from mmengine.runner import save_checkpoint

from mmevf.checkpoint import ATOMIC_BACKEND_ARGS, mmevf_to_sam


def main() -> None:
    parser = argparse.ArgumentParser(description='mmevf checkpoint -> SAM checkpoint layout')
    parser.add_argument('src', help='mmevf / MMEngine checkpoint')
    parser.add_argument('dst', help='output .pth file (SAM layout)')
    parser.add_argument('--force', action='store_true', help='overwrite an existing DST')
    args = parser.parse_args()
    if osp.exists(args.dst) and not args.force:
        raise FileExistsError(f'{args.dst} exists; pass --force to overwrite it')
    state_dict = mmevf_to_sam(args.src)
    # atomically: a crash never leaves a half-written DST
    save_checkpoint(state_dict, args.dst, backend_args=ATOMIC_BACKEND_ARGS)
    print(f'{len(state_dict)} tensors '
          f'({sum(v.numel() for v in state_dict.values()):,} parameters) -> {args.dst}')


if __name__ == '__main__':
    main()
