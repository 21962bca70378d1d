"""harness: choose how to ship a compressed image classifier without silently hurting
the people it serves.

The public entry point is :func:`harness.pipeline.run_experiment`; everything heavy
(torch, onnxruntime) is imported inside the functions that need it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
