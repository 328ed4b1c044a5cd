# Shared by every mmcvpt config: register mmcvpt's modules, log the
# trainable-parameter totals when training starts, and keep the RNG states
# in checkpoints so that a resumed run continues exactly.
custom_imports = dict(imports=['mmcvpt'], allow_failed_imports=False)
custom_hooks = [
    dict(type='TrainableParamReportHook'),
    dict(type='RNGStateHook'),
]
