import hashlib
import os
import shutil

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

import mmcvpt
from mmcvpt.models import CVPTViT
from mmcvpt.peft import CheckpointError, load_peft_checkpoint, tuned_state_dict
from tests.seg_fixtures import REPO, peft_loads_as_full, run_tool

ARCH = dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=128)


def test_peft_file_has_only_tuned_tensors(run):
    tmp, cfg, _ = run
    full = torch.load(tmp / 'work/iter_2.pth', weights_only=True)
    peft = torch.load(tmp / 'work/iter_2_peft.pth', weights_only=True)
    frozen = {
        k
        for k in full['state_dict']
        if k.startswith('backbone.') and k != 'backbone.prompts'
    }
    assert set(peft['state_dict']) == set(full['state_dict']) - frozen
    meta = peft['meta']['peft']['backbone.']
    sha = hashlib.sha256((tmp / 'vit_tiny.pth').read_bytes()).hexdigest()
    assert meta['pretrained_sha256'] == sha
    # as written in the config (relative to the training cwd), absolute,
    # and relative to the config's folder
    assert meta['pretrained'] == os.path.relpath(tmp / 'vit_tiny.pth', REPO)
    assert meta['pretrained_abspath'] == str(tmp / 'vit_tiny.pth')
    assert meta['pretrained_from_config'] == 'vit_tiny.pth'
    assert (meta['num_prompts'], meta['patch_size'], meta['prompt_position'],
            meta['cross_attn_weights']) == (4, 16, 'after_attn', 'shared')
    assert meta['config'] == str(cfg)
    assert 'decode_head.bottleneck.bn.running_mean' in peft['state_dict']
    assert meta['arch'] == dict(embed_dims=64, num_layers=4, num_heads=4)
    assert meta['mmcvpt_version'] == mmcvpt.__version__
    # one place for the metadata: the file's meta, not the state dict
    assert set(peft['meta']) == {'dataset_meta', 'iter', 'epoch', 'peft'}
    assert peft['meta']['dataset_meta']['classes'][0] == 'wall'
    ratio = os.path.getsize(tmp / 'work/iter_2_peft.pth') / os.path.getsize(
        tmp / 'work/iter_2.pth')
    assert ratio < 0.5  # no frozen backbone, no optimizer state


def test_export_full_reproduces_predictions(run):
    from mmseg.apis import inference_model, init_model
    tmp, cfg, sample = run
    proc = run_tool('tools/peft/export_full.py', str(cfg),
                    str(tmp / 'work/iter_2_peft.pth'), str(tmp / 'merged.pth'))
    state = torch.load(tmp / 'merged.pth', weights_only=True)['state_dict']
    pretrained = torch.load(
        tmp / 'vit_tiny.pth', weights_only=True)['state_dict']
    assert proc.stdout.splitlines() == [
        f"wrote {tmp / 'merged.pth'}: {len(state)} tensors from "
        f"{tmp / 'work/iter_2_peft.pth'} + frozen tensors of "
        f"{tmp / 'vit_tiny.pth'}"
    ]
    assert torch.equal(state['backbone.layers.0.attn.qkv.weight'],
                       pretrained['layers.0.attn.qkv.weight'])
    img = str(sample / 'images/validation/ADE_val_00000003.jpg')
    preds = []
    for ckpt in ('work/iter_2.pth', 'merged.pth'):
        model = init_model(str(cfg), str(tmp / ckpt), device='cpu')
        with torch.no_grad():
            preds.append(inference_model(model, img).seg_logits.data)
    assert torch.equal(preds[0], preds[1])


def test_load_from_peft_file_with_test_tool(run):
    tmp, cfg, _ = run
    logs = [
        run_tool('tools/test.py', str(cfg), str(tmp / f'work/{name}'),
                 '--work-dir', str(tmp / name)).stdout
        for name in ('iter_2.pth', 'iter_2_peft.pth')
    ]
    metrics = [
        line[line.index('aAcc'):] for log in logs for line in log.splitlines()
        if 'Iter(test)' in line and 'aAcc' in line
    ]
    assert len(metrics) == 2 and metrics[0].split('data_time')[0] == \
        metrics[1].split('data_time')[0]


def test_mismatched_metadata_is_refused(run):
    tmp, cfg, _ = run
    config = Config.fromfile(cfg)
    config.model.backbone.num_prompts = 8
    with MODELS.switch_scope_and_registry('mmseg') as reg:
        model = reg.build(config.model)
    with pytest.raises(
            ValueError,
            match=r'PEFT checkpoint .*iter_2_peft\.pth '
            r'was saved for num_prompts=4 but this model has '
            r'num_prompts=8; use the config it was trained with'):
        load_peft_checkpoint(model, str(tmp / 'work/iter_2_peft.pth'))


def test_peft_files_rotate_with_their_checkpoints(run):
    tmp, _, _ = run  # checkpoint every iteration, max_keep_ckpts=1
    names = sorted(p.name for p in (tmp / 'work').glob('*.pth'))
    assert names == ['iter_2.pth', 'iter_2_peft.pth']


def test_peft_file_through_mmseg_apis_equals_full_checkpoint(run):
    """What a user does with the small file: init_model / MMSegInferencer
    (neither calls init_weights; init_model even drops the init_cfg)."""
    tmp, cfg, sample = run
    img = str(sample / 'images/validation/ADE_val_00000003.jpg')
    _, inferencer, logits = peft_loads_as_full(
        cfg, tmp / 'work/iter_2.pth', tmp / 'work/iter_2_peft.pth', img)
    pred = inferencer(img, return_datasamples=True).pred_sem_seg.data
    assert torch.equal(pred, logits.argmax(0, keepdim=True))


def test_peft_file_refuses_missing_or_different_pretrained(run, tmp_path):
    from mmseg.apis import init_model
    tmp, cfg, _ = run
    peft = torch.load(tmp / 'work/iter_2_peft.pth', weights_only=True)
    entry = peft['meta']['peft']['backbone.']
    sha = entry['pretrained_sha256']
    moved = tmp_path / 'moved.pth'
    # Same name, other content (another checkpoint of the "same" ViT).
    other = tmp_path / 'other_vit.pth'
    entry.update(pretrained=str(other), pretrained_abspath=str(other),
                 pretrained_from_config=None)
    torch.save(peft, moved)
    with pytest.raises(CheckpointError) as err:
        init_model(str(cfg), str(moved), device='cpu')
    assert f"'{other}'" in str(err.value) and sha in str(err.value)
    assert 'not there' in str(err.value) and '\n' not in str(err.value)
    vit = CVPTViT(arch=ARCH, img_size=64, num_prompts=0)
    torch.save({'state_dict': vit.state_dict()}, other)
    with pytest.raises(CheckpointError,
                       match=r"pretrained backbone '.*other_vit\.pth' has "
                       r'sha256 [0-9a-f]{16}\.\.\. but the PEFT checkpoint '
                       rf'was trained on .* with sha256 {sha}; use that file'):
        init_model(str(cfg), str(moved), device='cpu')
    shutil.copy(tmp / 'vit_tiny.pth', other)  # the right bytes elsewhere
    init_model(str(cfg), str(moved), device='cpu')


def test_full_checkpoint_with_other_prompt_count_is_refused(run):
    from mmseg.apis import init_model
    tmp, cfg, _ = run
    for name in ('iter_2.pth', 'iter_2_peft.pth'):
        with pytest.raises(CheckpointError) as err:
            init_model(str(cfg), str(tmp / 'work' / name), device='cpu',
                       cfg_options={'model.backbone.num_prompts': 8})
        assert '\n' not in str(err.value)
        if name == 'iter_2.pth':
            assert str(err.value) == (
                'backbone.prompts: checkpoint shape (4, 4, 64) but the model '
                'has (4, 8, 64); the config differs: num_prompts 4 in the '
                'checkpoint, 8 in the config')
        else:
            assert 'saved for num_prompts=4 but this model has ' \
                'num_prompts=8' in str(err.value)
    with pytest.raises(CheckpointError, match='model has num_prompts=0'):
        init_model(str(cfg), str(tmp / 'work/iter_2.pth'), device='cpu',
                   cfg_options={'model.backbone.num_prompts': 0})


def _backbone(pretrained=None, **kwargs):
    init_cfg = None if pretrained is None else dict(
        type='StrictPretrained', checkpoint=str(pretrained))
    model = CVPTViT(arch=ARCH, img_size=32, patch_size=8, num_prompts=3,
                    init_cfg=init_cfg, **kwargs)
    model.init_weights()
    return model


class _Wrapper(torch.nn.Module):

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.head = torch.nn.Linear(64, 2)


@pytest.mark.parametrize('weights,stored', [
    ('shared', set()),
    ('copy', set()),
    ('random', {'cross_attn'}),
])
def test_peft_state_keeps_what_the_pretrained_file_cannot_rebuild(
        tmp_path, weights, stored):
    torch.manual_seed(0)
    vit = CVPTViT(arch=ARCH, img_size=32, patch_size=8, num_prompts=0)
    torch.save({'state_dict': vit.state_dict()}, tmp_path / 'vit.pth')
    torch.manual_seed(1)
    src = _Wrapper(_backbone(tmp_path / 'vit.pth', cross_attn_weights=weights))
    state = tuned_state_dict(src)
    kept = {k.split('.')[1] for k in state if k.startswith('backbone.')}
    assert kept == {'prompts', 'peft_meta'} | stored
    torch.manual_seed(2)  # other random tensors everywhere
    dst = _Wrapper(CVPTViT(arch=ARCH, img_size=32, patch_size=8,
                           num_prompts=3, cross_attn_weights=weights))
    assert dst.load_state_dict(state, strict=True).missing_keys == []
    expected = src.state_dict()
    assert all(torch.equal(dst.state_dict()[k], v)
               for k, v in expected.items())


def test_peft_state_without_pretrained_file_keeps_the_backbone():
    torch.manual_seed(1)
    src = _Wrapper(_backbone())
    state = tuned_state_dict(src)
    assert state['backbone.peft_meta']['pretrained_sha256'] is None
    assert set(state) == set(src.state_dict()) | {'backbone.peft_meta'}
    dst = _Wrapper(_backbone())
    dst.load_state_dict(state)
    assert torch.equal(dst.backbone.layers[1].attn.qkv.weight,
                       src.backbone.layers[1].attn.qkv.weight)


@pytest.mark.parametrize('name', ['iter_2.pth', 'iter_2_peft.pth'])
def test_test_tool_refuses_a_mismatch_in_one_line(run, name):
    tmp, cfg, _ = run
    proc = run_tool('tools/test.py', str(cfg), str(tmp / 'work' / name),
                    '--work-dir', str(tmp / f'mismatch_{name}'),
                    '--cfg-options', 'model.backbone.num_prompts=8',
                    check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and 'Traceback' not in proc.stderr
    assert ('num_prompts 4 in the checkpoint, 8 in the config' in last
            if name == 'iter_2.pth' else
            'saved for num_prompts=4 but this model has num_prompts=8' in last)
    assert str(cfg) in last or name == 'iter_2.pth'


def _attn_pairs(backbone):
    """(name, cross-attention copy, self-attention) of every layer."""
    for i, (layer, ca) in enumerate(zip(backbone.layers,
                                        backbone.cross_attn)):
        for name in ('qkv.weight', 'qkv.bias', 'proj.weight', 'proj.bias'):
            yield (f'{i}.{name}', ca.get_parameter(name),
                   layer.attn.get_parameter(name))


def test_trained_cross_attn_copies_survive_a_peft_round_trip(tmp_path):
    """'copy' + train_cross_attn: the copies start as the self-attention,
    move in a step, are kept by the PEFT state dict and come back as
    trained, not refilled from the self-attention the pretrained file
    restores, into a fresh model and into one already initialised."""
    torch.manual_seed(0)
    vit = CVPTViT(arch=ARCH, img_size=32, patch_size=8, num_prompts=0)
    torch.save({'state_dict': vit.state_dict()}, tmp_path / 'vit.pth')
    kwargs = dict(cross_attn_weights='copy', train_cross_attn=True)
    torch.manual_seed(1)
    src = _Wrapper(_backbone(tmp_path / 'vit.pth', **kwargs))
    assert all(torch.equal(ca, sa) for _, ca, sa in _attn_pairs(src.backbone))
    frozen = {k: v.clone() for k, v in src.state_dict().items()
              if k.startswith('backbone.layers.')}
    optim = torch.optim.SGD(
        [p for p in src.parameters() if p.requires_grad], lr=1.0)
    x = torch.randn(4, 3, 32, 32)
    loss = torch.nn.functional.cross_entropy(
        src.head(src.backbone(x)[0]), torch.tensor([0, 1, 1, 0]))
    loss.backward()
    optim.step()
    moved = [n for n, ca, sa in _attn_pairs(src.backbone)
             if not torch.equal(ca, sa)]
    assert len(moved) == 4 * ARCH['num_layers']  # every copied tensor
    assert all(torch.equal(src.state_dict()[k], v) for k, v in frozen.items())

    torch.save(tuned_state_dict(src), tmp_path / 'peft.pth')
    state = torch.load(tmp_path / 'peft.pth', weights_only=True)
    assert {k for k in state if k.startswith('backbone.cross_attn.')} == {
        f'backbone.cross_attn.{n}'
        for n, _, _ in _attn_pairs(src.backbone)
    }
    assert not set(state) & set(frozen)  # those come from vit.pth
    expected = src.state_dict()
    torch.manual_seed(2)  # other random tensors everywhere
    fresh = _Wrapper(CVPTViT(arch=ARCH, img_size=32, patch_size=8,
                             num_prompts=3, **kwargs))
    torch.manual_seed(3)
    initialised = _Wrapper(_backbone(tmp_path / 'vit.pth', **kwargs))
    for dst in (fresh, initialised):
        result = dst.load_state_dict(dict(state), strict=True)
        assert result.missing_keys == [] and result.unexpected_keys == []
        loaded = dst.state_dict()
        assert loaded.keys() == expected.keys()
        assert [k for k in expected
                if not torch.equal(loaded[k], expected[k])] == []
        assert all(not torch.equal(ca, sa)
                   for _, ca, sa in _attn_pairs(dst.backbone))


# tools/test.py as a user runs it, then the weights its model tested with.
TEST_AND_DUMP = """
import runpy, sys, torch
from mmengine.runner import Runner
test, out = Runner.test, sys.argv[1]
def test_and_dump(self):
    metrics = test(self)
    torch.save(self.model.state_dict(), out)
    return metrics
Runner.test = test_and_dump
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def test_peft_file_through_test_tool_tta(run, tmp_path):
    """--tta wraps the segmentor (SegTTAModel, keys under ``module.``): the
    PEFT file still completes from the pretrained file; the wrapped model
    tests with exactly the full checkpoint's tensors, no key unmatched."""
    import sys
    tmp, cfg, _ = run
    full = torch.load(tmp / 'work/iter_2.pth', weights_only=True)
    proc = run_tool(sys.executable, '-c', TEST_AND_DUMP,
                    str(tmp_path / 'used.pth'), 'tools/test.py', str(cfg),
                    str(tmp / 'work/iter_2_peft.pth'), '--tta', '--work-dir',
                    str(tmp_path / 'work'), '--cfg-options',
                    'test_dataloader.dataset.indices=1')
    log = proc.stdout + proc.stderr
    assert 'Iter(test) [1/1]' in log and 'mIoU' in log
    assert 'do not match exactly' not in log and 'missing keys' not in log
    used = torch.load(tmp_path / 'used.pth', weights_only=True)
    assert used.keys() == {'module.' + k for k in full['state_dict']}
    assert [k for k, v in full['state_dict'].items()
            if not torch.equal(used['module.' + k], v)] == []
