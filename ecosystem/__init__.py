"""ecosim: an agent-based laboratory for generative models that train on each other's outputs."""

__version__ = "0.1.0"
