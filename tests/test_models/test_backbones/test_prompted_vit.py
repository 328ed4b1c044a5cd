"""PromptedViT, the base of CVPTViT and VPTViT: the depth of the prompts
under layer-wise lr decay (mmpretrain's LearningRateDecayOptimWrapper-
Constructor, through ImageClassifier.get_layer_depth)."""
import pytest
from mmpretrain.engine.optimizers import \
    LearningRateDecayOptimWrapperConstructor
from mmpretrain.registry import MODELS

import mmcvpt  # noqa: F401  (registers the backbones)

TINY = dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=64)
L = TINY['num_layers']


def _classifier(backbone_type):
    # mmpretrain's scope whatever DefaultScope an earlier test left behind
    with MODELS.switch_scope_and_registry('mmpretrain') as registry:
        return registry.build(
            dict(
                type='ImageClassifier',
                backbone=dict(type=backbone_type, arch=TINY, img_size=32,
                              patch_size=8, num_prompts=3,
                              freeze_backbone=False),
                head=dict(type='LinearClsHead', num_classes=5,
                          in_channels=32)))


@pytest.mark.parametrize('backbone_type', ['CVPTViT', 'VPTViT'])
def test_prompts_get_the_heads_depth(backbone_type):
    """One (L, m, C) tensor for all layers gets one depth: today the one
    after the last layer (mmpretrain's fall-through for names it does not
    know), shared with the final norm and the head, so the prompts train at
    the full lr while layer i's tensors get decay**(L - i)."""
    model = _classifier(backbone_type)
    depth = model.get_layer_depth
    assert depth('backbone.prompts') == (L + 1, L + 2)
    assert depth('backbone.prompts') == depth('head.fc.weight') == \
        depth('backbone.ln1.weight')
    assert depth('backbone.layers.0.attn.qkv.weight') == (1, L + 2)
    assert depth('backbone.cls_token') == (0, L + 2)

    base_lr, decay = 0.1, 0.5
    constructor = LearningRateDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(
            type='SGD', lr=base_lr, weight_decay=0.)),
        paramwise_cfg=dict(layer_decay_rate=decay))
    optim = constructor(model).optimizer
    lrs = {
        name: group['lr']
        for group in optim.param_groups for name, param in
        model.named_parameters() if param is group['params'][0]
    }
    assert lrs['backbone.prompts'] == base_lr
    assert lrs['head.fc.weight'] == base_lr
    for i in range(L):
        assert lrs[f'backbone.layers.{i}.attn.qkv.weight'] == \
            pytest.approx(base_lr * decay**(L - i))
    assert lrs['backbone.patch_embed.projection.weight'] == pytest.approx(
        base_lr * decay**(L + 1))
