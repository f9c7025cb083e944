"""Deployment: EVF-SAM exported to ONNX (:mod:`mmevf.deploy.export`) and run by ONNX Runtime
(:mod:`mmevf.deploy.onnx_predictor`, standalone: it imports neither mmevf nor torch).

Nothing is imported here, so that ``import mmevf.deploy.onnx_predictor`` stays as light as the
copy the exporter writes next to the graphs (``predict.py``)."""
