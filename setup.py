from setuptools import find_packages, setup


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


setup(
    name='mmcvpt',
    version=get_version(),
    description='CVPT (Cross Visual Prompt Tuning) for mmsegmentation '
    'and mmpretrain',
    long_description=readme(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.8',
    license='Apache License 2.0',
    # mm* packages are pinned in requirements/mminstall.txt and installed
    # separately: mmcv must be built with ops (see README).
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require=dict(
        tests=parse_requirements('requirements/tests.txt'),
        mim=parse_requirements('requirements/mminstall.txt')),
    zip_safe=False)
