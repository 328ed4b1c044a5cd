# mmseg's UperNet ViT-B/16 with a CVPTViT backbone (configs/README.md).
_base_ = [
    'mmseg::_base_/models/upernet_vit-b16_ln_mln.py',
    './cvpt_vit-b16.py',
]
model = dict(pretrained=None, backbone={{_base_.vit_backbone}})
