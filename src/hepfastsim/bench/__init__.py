"""Speed: timing protocol (ms per shower at batch 1, 100, 10000), full-simulation comparison, ONNX export."""
