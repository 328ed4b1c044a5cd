# Shared by every mmcvpt config: register mmcvpt's modules, log the
# trainable-parameter totals when training starts.
custom_imports = dict(imports=['mmcvpt'], allow_failed_imports=False)
custom_hooks = [dict(type='TrainableParamReportHook')]
