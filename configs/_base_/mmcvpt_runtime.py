# Shared by every mmcvpt config: registration and hooks (configs/README.md).
_base_ = ['./mmcvpt_hooks.py']
custom_imports = dict(imports=['mmcvpt'], allow_failed_imports=False)
