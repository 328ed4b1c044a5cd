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
    head = 32 * 7 + 7
    assert report['trainable'] == 3 * 5 * 32 + head
    assert report['total'] == sum(p.numel() for p in model.parameters())
    assert report['modules']['head'] == (head, head)
    assert report['modules']['backbone'][0] == 3 * 5 * 32
    pct = 100 * report['trainable'] / report['total']
    assert report['summary'] == (
        f"trainable {report['trainable'] / 1e6:.2f}M / "
        f"{report['total'] / 1e6:.2f}M ({pct:.2f}%)")
    out = capsys.readouterr().out
    assert report['summary'] in out and 'head: trainable' in out


def test_shared_parameter_counted_once():
    lin = nn.Linear(4, 4)
    model = nn.Sequential(lin, lin)
    report = trainable_parameter_report(model, logger=None)
    assert report['total'] == 20 and report['trainable'] == 20
