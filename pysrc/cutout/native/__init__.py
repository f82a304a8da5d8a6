"""Native reference pipeline (numpy + pillow + onnxruntime, CPU)."""
