"""Load tools/misc/make_samples.py once for tests that need samples."""
import importlib.util

from tests.seg_fixtures import REPO

_spec = importlib.util.spec_from_file_location(
    'make_samples', REPO / 'tools/misc/make_samples.py')
make_samples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_samples)
