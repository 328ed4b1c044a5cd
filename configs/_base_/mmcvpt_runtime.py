# Shared by every mmcvpt config: registration and hooks (configs/README.md).
custom_imports = dict(imports=['mmcvpt'], allow_failed_imports=False)
custom_hooks = [
    dict(type='TrainableParamReportHook'),
    dict(type='RNGStateHook'),
    dict(type='PEFTCheckpointHook'),
    dict(type='PreemptionHook'),
]
