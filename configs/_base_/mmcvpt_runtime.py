# Shared by every mmcvpt config: register mmcvpt's modules, log the
# trainable-parameter totals when training starts, keep the RNG states in
# checkpoints so that a resumed run continues exactly, and write a small
# `<checkpoint>_peft.pth` (tuned tensors only) beside every checkpoint.
custom_imports = dict(imports=['mmcvpt'], allow_failed_imports=False)
custom_hooks = [
    dict(type='TrainableParamReportHook'),
    dict(type='RNGStateHook'),
    dict(type='PEFTCheckpointHook'),
]
