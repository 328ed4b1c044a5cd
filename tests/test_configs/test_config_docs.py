"""Config prose lives where OpenMMLab keeps it: a README per config folder
(each config named in its folder's table), one header line per file."""
import re

import pytest

from tests.seg_fixtures import REPO

CONFIGS = sorted((REPO / 'configs').rglob('*.py'))


def _header(path):
    """The comment lines above a config's first line of code."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith('#'):
            break
        lines.append(line)
    return lines


@pytest.mark.parametrize(
    'path', CONFIGS, ids=lambda p: str(p.relative_to(REPO / 'configs')))
def test_one_header_line(path):
    header = _header(path)
    assert len(header) == 1, f'{path}: {len(header)} header lines'
    assert "mmengine's default constructor" not in path.read_text()


def test_every_config_folder_has_a_readme_naming_its_configs():
    folders = {p.parent for p in CONFIGS if '_base_' not in p.parts}
    for folder in sorted(folders):
        readme = folder / 'README.md'
        assert readme.is_file(), f'{folder} has no README.md'
        text = readme.read_text()
        # generated families are named by pattern, `vpt_vitb_fgvc-<dataset>.py`
        patterns = [
            re.compile(re.sub(r'<[^>]+>', '.+', re.escape(name)) + '$')
            for name in re.findall(r'`([^`]*<[^`]*>[^`]*\.py)`', text)]
        missing = [p.name for p in folder.glob('*.py')
                   if p.name not in text
                   and not any(pat.match(p.name) for pat in patterns)]
        assert not missing, f'{readme} does not name {missing}'
