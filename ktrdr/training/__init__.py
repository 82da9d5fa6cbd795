"""Training: zigzag labels, the chronological split, the training loop, and model storage.

Importing this package loads no torch, numpy or pandas: the backend lists models through
:mod:`ktrdr.training.model_storage`. The heavy modules (``labels``, ``split``, ``trainer``) import
them when they are imported themselves.
"""
