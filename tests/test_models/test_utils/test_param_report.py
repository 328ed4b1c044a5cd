import pytest
import torch.nn as nn
from mmengine.logging import MMLogger

from mmcvpt.models import CVPTViT, trainable_parameter_report

TINY = dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=64)


class _Classifier(nn.Module):

    def __init__(self, m):
        super().__init__()
        self.backbone = CVPTViT(
            arch=TINY, img_size=32, patch_size=8, num_prompts=m)
        self.head = nn.Linear(32, 7)


def test_counts_prompts_and_head(capsys):
    model = _Classifier(m=5)
    logger = MMLogger.get_instance('test_param_report', log_level='INFO')
    report = trainable_parameter_report(model, per_module=True, logger=logger)
    # Counted by hand for C=32, 3 layers, FFN 64, 8x8 patches of 32x32:
    patch_embed = 3 * 8 * 8 * 32 + 32  # 6176
    tokens = 32 + (1 + 4 * 4) * 32  # cls token + position embeddings: 576
    layer = (2 * 32 + 32 * 96 + 96 + 32 * 32 + 32 + 2 * 32 + 32 * 64 + 64 +
             64 * 32 + 32)  # ln1, qkv, proj, ln2, ffn: 8544
    final_norm = 2 * 32
    prompts = 3 * 5 * 32  # 480
    head = 32 * 7 + 7  # 231
    frozen = patch_embed + tokens + 3 * layer + final_norm
    assert frozen == 32448
    assert report['trainable'] == prompts + head == 711
    assert report['total'] == frozen + prompts + head == 33159
    assert report['modules']['head'] == (231, 231)
    assert report['modules']['backbone'] == (480, 32928)
    assert report['ratio'] == pytest.approx(711 / 33159)
    assert report['summary'] == 'trainable 0.00M / 0.03M (2.14%)'
    out = capsys.readouterr().out
    assert 'trainable 0.00M / 0.03M (2.14%)' in out
    assert '  backbone: trainable 0.00M / 0.03M' in out
    assert '  head: trainable 0.00M / 0.00M' in out


def test_summary_in_millions():
    model = nn.Sequential(nn.Linear(1000, 1000), nn.Linear(1000, 100))
    model[0].requires_grad_(False)
    report = trainable_parameter_report(model, logger=None)
    # 1000 * 1000 + 1000 frozen, 1000 * 100 + 100 trainable
    assert (report['trainable'], report['total']) == (100100, 1101100)
    assert report['summary'] == 'trainable 0.10M / 1.10M (9.09%)'


def test_shared_parameter_counted_once():
    lin = nn.Linear(4, 4)
    model = nn.Sequential(lin, lin)
    report = trainable_parameter_report(model, logger=None)
    assert report['total'] == 20 and report['trainable'] == 20
