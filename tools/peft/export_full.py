"""Merge a PEFT checkpoint with its pretrained backbone into a full one.

The result is a plain mmengine checkpoint (``meta`` + ``state_dict``) that
mmseg/mmpretrain tools and Inferencers load like any other; with
``--format safetensors`` a ``.safetensors`` file. Same as
``tools/peft/export.py --full``.

Example::

    python tools/peft/export_full.py configs/cvpt_vitb_ade20k.py \\
        work_dirs/cvpt_vitb_ade20k/iter_160000_peft.pth full.pth
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from export import main as export_main  # noqa: E402


def main(argv=None):
    export_main(argv, full=True)


if __name__ == '__main__':
    main()
