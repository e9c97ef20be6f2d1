"""Deployment artifacts: the merged MoE as one checked file set (``bundle``) and ONNX graphs of
the network (``onnx_export``), for inference boxes without plugins or without PyTorch."""
