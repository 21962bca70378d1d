"""Export: torch -> torch.export program and ONNX, and inspection of what a file really holds."""
