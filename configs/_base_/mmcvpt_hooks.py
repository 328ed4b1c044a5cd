# mmcvpt's hooks, shared by every mmcvpt config (configs/README.md).
custom_hooks = [
    dict(type='TrainableParamReportHook'),
    dict(type='RNGStateHook'),
    dict(type='PEFTCheckpointHook'),
    dict(type='PreemptionHook'),
]
