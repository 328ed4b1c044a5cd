"""PEFT files any tool can read: tensors only in the state dict, the
metadata in ``meta`` (or a safetensors header), and every loader of today
(init_model, MMSegInferencer, load_from / tools/test.py) taking them."""
import json
import os
import shutil
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from mmcvpt.peft import CheckpointError, load_peft_checkpoint
from tests.seg_fixtures import REPO, load_tool, run_tool
from tests.test_peft.test_checkpoint import TEST_AND_DUMP

IMAGE = 'images/validation/ADE_val_00000003.jpg'


@pytest.fixture(scope='module')
def exported(run, tmp_path_factory):
    """The hook's PEFT file as .safetensors, and the merged full checkpoint
    as .safetensors, through tools/peft/export.py (in-process)."""
    tmp, cfg, _ = run
    out = tmp_path_factory.mktemp('exported')
    export = load_tool('tools/peft/export.py')
    peft = str(tmp / 'work/iter_2_peft.pth')
    export.main([str(cfg), peft, str(out / 'peft.safetensors'),
                 '--format', 'safetensors'])
    export.main([str(cfg), peft, str(out / 'full.safetensors'),
                 '--format', 'safetensors', '--full'])
    return out


def _read_safetensors(path):
    """safetensors' own reader: tensors and the header's JSON meta."""
    with safe_open(path, framework='pt') as f:
        header = f.metadata()
    return dict(meta=json.loads(header['meta']), state_dict=load_file(path))


def _logits(model, img):
    from mmseg.apis import inference_model
    with torch.no_grad():
        return inference_model(model, img).seg_logits.data


def test_hook_file_holds_tensors_only(run, tmp_path):
    tmp, cfg, _ = run
    path = tmp / 'work/iter_2_peft.pth'
    # torch's own allow-list only, not mmcvpt's (import mmcvpt added it)
    allowed = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        ckpt = torch.load(path, weights_only=True)
    finally:
        torch.serialization.add_safe_globals(allowed)
    state = ckpt['state_dict']
    assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    save_file(state, tmp_path / 'plain.safetensors')  # no special case
    entry = ckpt['meta']['peft']['backbone.']
    assert set(ckpt['meta']['peft']) == {'backbone.'}
    assert entry['pretrained'] == os.path.relpath(tmp / 'vit_tiny.pth', REPO)
    assert entry['pretrained_abspath'] == str(tmp / 'vit_tiny.pth')
    assert entry['pretrained_from_config'] == 'vit_tiny.pth'
    assert entry['config'] == str(cfg) and 'loaded_config' not in entry


def test_safetensors_export_keeps_tensors_and_metadata(run, exported):
    tmp, _, _ = run
    ckpt = torch.load(tmp / 'work/iter_2_peft.pth', weights_only=True)
    loaded = _read_safetensors(exported / 'peft.safetensors')
    assert loaded['state_dict'].keys() == ckpt['state_dict'].keys()
    assert loaded['meta'] == json.loads(json.dumps(ckpt['meta']))
    assert all(torch.equal(loaded['state_dict'][k], v)
               for k, v in ckpt['state_dict'].items())


def test_every_format_through_init_model_and_inferencer(run, exported):
    """.pth PEFT, .safetensors PEFT and full .safetensors give the full
    checkpoint's tensors and logits exactly."""
    from mmseg.apis import MMSegInferencer, init_model
    tmp, cfg, sample = run
    img = str(sample / IMAGE)
    full = init_model(str(cfg), str(tmp / 'work/iter_2.pth'), device='cpu')
    expected, reference = full.state_dict(), _logits(full, img)
    for weights in (tmp / 'work/iter_2_peft.pth',
                    exported / 'peft.safetensors',
                    exported / 'full.safetensors'):
        model = init_model(str(cfg), str(weights), device='cpu')
        inferencer = MMSegInferencer(model=str(cfg), weights=str(weights),
                                     device='cpu')
        assert inferencer.model.dataset_meta['classes'][0] == 'wall'
        for m in (model, inferencer.model):
            state = m.state_dict()
            assert state.keys() == expected.keys()
            assert [k for k in expected
                    if not torch.equal(state[k], expected[k])] == []
            assert torch.equal(_logits(m, img), reference)


def _old_format(path, out):
    """A PEFT file as mmcvpt wrote it before: the entry (one pretrained
    path, here absolute as the old tests wrote it) at backbone.peft_meta of
    the state dict, nothing in meta."""
    ckpt = torch.load(path, weights_only=True)
    entries = ckpt['meta'].pop('peft')
    for prefix, entry in entries.items():
        entry['pretrained'] = entry.pop('pretrained_abspath')
        entry.pop('pretrained_from_config')
        ckpt['state_dict'][prefix + 'peft_meta'] = entry
    torch.save(ckpt, out)


def test_old_format_file_still_loads_and_converts(run, tmp_path):
    from mmseg.apis import init_model
    tmp, cfg, sample = run
    old = tmp_path / 'old_peft.pth'
    _old_format(tmp / 'work/iter_2_peft.pth', old)
    assert 'backbone.peft_meta' in torch.load(old, weights_only=True)[
        'state_dict']
    img = str(sample / IMAGE)
    reference = _logits(
        init_model(str(cfg), str(tmp / 'work/iter_2.pth'), device='cpu'),
        img)
    assert torch.equal(
        _logits(init_model(str(cfg), str(old), device='cpu'), img),
        reference)
    # export.py turns it into a file of today (entries in meta)
    load_tool('tools/peft/export.py').main(
        [str(cfg), str(old), str(tmp_path / 'new.safetensors'),
         '--format', 'safetensors'])
    new = _read_safetensors(tmp_path / 'new.safetensors')
    assert 'backbone.peft_meta' not in new['state_dict']
    assert new['meta']['peft']['backbone.']['num_prompts'] == 4
    assert torch.equal(
        _logits(init_model(str(cfg), str(tmp_path / 'new.safetensors'),
                           device='cpu'), img), reference)


def test_export_refuses_a_suffix_that_contradicts_the_format(run, tmp_path):
    tmp, cfg, _ = run
    export = load_tool('tools/peft/export.py')
    out = tmp_path / 'peft.pth'
    with pytest.raises(SystemExit) as err:
        export.main([str(cfg), str(tmp / 'work/iter_2_peft.pth'), str(out),
                     '--format', 'safetensors'])
    assert str(err.value) == (
        f"error: out '{out}' does not fit --format safetensors: a "
        'safetensors file is named *.safetensors, a pth file is not '
        '(loaders tell the format by the suffix)')
    assert not out.exists()


def _moved_tree(run, root):
    """The run's config, pretrained file and safetensors PEFT file as if
    the whole tree had been at ``root/gone`` and moved to ``root/moved``:
    neither the path as written nor the absolute one exists."""
    tmp, cfg, _ = run
    gone, moved = root / 'gone', root / 'moved'
    (moved / 'work').mkdir(parents=True)
    written = os.path.relpath(tmp / 'vit_tiny.pth', REPO)
    text = cfg.read_text().replace(written, str(gone / 'vit_tiny.pth'))
    assert text != cfg.read_text()
    (moved / 'tiny.py').write_text(text)
    shutil.copy(tmp / 'vit_tiny.pth', moved / 'vit_tiny.pth')
    ckpt = torch.load(tmp / 'work/iter_2_peft.pth', weights_only=True)
    entry = ckpt['meta']['peft']['backbone.']
    entry.update(pretrained='pretrain/vit_tiny.pth',
                 pretrained_abspath=str(gone / 'vit_tiny.pth'),
                 config=str(gone / 'tiny.py'))
    save_file(ckpt['state_dict'], moved / 'work/peft.safetensors',
              metadata=dict(format='pt', meta=json.dumps(ckpt['meta'])))
    return moved


def test_moved_tree_finds_pretrained_relative_to_config(run, tmp_path):
    """tools/test.py (load_from) with a .safetensors PEFT file in a moved
    tree: the pretrained file is found relative to the config in use, and
    the model tests with exactly the full checkpoint's tensors."""
    from mmseg.apis import init_model
    tmp, _, _ = run
    moved = _moved_tree(run, tmp_path)
    proc = run_tool(sys.executable, '-c', TEST_AND_DUMP,
                    str(tmp_path / 'used.pth'), 'tools/test.py',
                    str(moved / 'tiny.py'),
                    str(moved / 'work/peft.safetensors'), '--work-dir',
                    str(tmp_path / 'work'), '--skip-preflight',
                    '--cfg-options',
                    'test_dataloader.dataset.indices=1')
    assert 'Iter(test) [1/1]' in proc.stdout + proc.stderr
    full = torch.load(tmp / 'work/iter_2.pth', weights_only=True)
    used = torch.load(tmp_path / 'used.pth', weights_only=True)
    assert used.keys() == full['state_dict'].keys()
    assert [k for k, v in full['state_dict'].items()
            if not torch.equal(used[k], v)] == []
    # A loader that knows the config (the export tool's) finds it too ...
    from mmengine.config import Config
    from mmengine.registry import MODELS
    cfg = Config.fromfile(moved / 'tiny.py')
    with MODELS.switch_scope_and_registry('mmseg') as reg:
        model = reg.build(cfg.model)
    load_peft_checkpoint(model, str(moved / 'work/peft.safetensors'),
                         str(moved / 'tiny.py'))
    assert torch.equal(model.backbone.layers[0].attn.qkv.weight,
                       full['state_dict']['backbone.layers.0.attn.qkv.weight'])
    # ... one that does not (init_model) says where it looked, in one line.
    with pytest.raises(CheckpointError) as err:
        init_model(str(moved / 'tiny.py'),
                   str(moved / 'work/peft.safetensors'), device='cpu')
    assert str(err.value).endswith(
        "it is not there (looked for pretrain/vit_tiny.pth, "
        f"{tmp_path / 'gone/vit_tiny.pth'}); put the file there or point "
        'model.backbone.init_cfg.checkpoint to it')
    assert '\n' not in str(err.value)
