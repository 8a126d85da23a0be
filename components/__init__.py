"""meshserve's library: one sub-package per concern, plus the thin pipeline steps in `components.steps`.

Importing this package (or any concern's `__init__`) must stay cheap: TensorFlow, scikit-learn,
kubernetes and kfp are imported inside the functions that need them.
"""

__version__ = "0.1.0"
