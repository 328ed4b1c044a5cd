import os
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
# What `mim` and mmengine's `mmcvpt::` paths look for in <package>/.mim.
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def readme():
    with open('README.md', encoding='utf-8') as f:
        return f.read()


def get_version():
    scope = {}
    with open('mmcvpt/version.py', encoding='utf-8') as f:
        exec(compile(f.read(), 'mmcvpt/version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname):
    with open(fname, encoding='utf-8') as f:
        return [
            line.strip() for line in f
            if line.strip() and not line.startswith(('#', '-'))
        ]


def _remove(path):
    if osp.islink(path) or osp.isfile(path):
        os.remove(path)
    elif osp.isdir(path):
        shutil.rmtree(path)


class BuildPyWithMim(build_py):
    """build_py that adds configs/, tools/ and model-index.yml as mmcvpt/.mim.

    As mmseg's ``add_mim_extension``: an editable install links the
    checkout's files (mmcvpt/.mim/configs -> ../../configs), a wheel gets
    copies. Copies go to the build folder only, so building a wheel never
    turns the checkout's links into stale copies.
    """

    def run(self):
        super().run()
        if self.editable_mode:
            self._add_mim(osp.join(ROOT, 'mmcvpt', '.mim'), link=True)
        else:
            self._add_mim(osp.join(self.build_lib, 'mmcvpt', '.mim'),
                          link=False)

    @staticmethod
    def _add_mim(mim_dir, link):
        os.makedirs(mim_dir, exist_ok=True)
        for name in MIM_FILES:
            src, dst = osp.join(ROOT, name), osp.join(mim_dir, name)
            _remove(dst)
            if link:
                os.symlink(osp.relpath(src, mim_dir), dst)
            elif osp.isdir(src):
                shutil.copytree(
                    src, dst,
                    ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                shutil.copyfile(src, dst)


setup(
    name='mmcvpt',
    version=get_version(),
    description='CVPT (Cross Visual Prompt Tuning) for mmsegmentation '
    'and mmpretrain',
    long_description=readme(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=('mmcvpt', 'mmcvpt.*')),
    cmdclass=dict(build_py=BuildPyWithMim),
    python_requires='>=3.8',
    license='Apache License 2.0',
    # mm* packages are pinned in requirements/mminstall.txt and installed
    # separately: mmcv must be built with ops (see README).
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require=dict(
        tests=parse_requirements('requirements/tests.txt'),
        mim=parse_requirements('requirements/mminstall.txt')),
    zip_safe=False)
