"""Softmax regression for one weighted data set, fitted by scipy's L-BFGS on the plain objective.

Minimises Σ_i w_i (−log softmax(W [x_i; 1])_{y_i}) + (ridge/2)‖W‖² over ``W (C, D+1)``, with the analytic
gradient (Böhning 1992); independent of the batched Newton solver it checks.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax


def fit_softmax(x: np.ndarray, y: np.ndarray, w: np.ndarray, classes: int, ridge: float) -> np.ndarray:
    """``W (C, D+1)`` for features ``x (B, D)``, integer labels ``y (B,)`` and item weights ``w (B,)``."""
    design = np.c_[x, np.ones(len(x))]
    onehot = np.eye(classes)[y]

    def loss(flat: np.ndarray) -> tuple[float, np.ndarray]:
        theta = flat.reshape(classes, -1)
        logits = design @ theta.T
        value = -(w * (onehot * log_softmax(logits, axis=1)).sum(1)).sum() + 0.5 * ridge * (theta**2).sum()
        grad = ((softmax(logits, axis=1) - onehot) * w[:, None]).T @ design + ridge * theta
        return value, grad.ravel()

    start = np.zeros(classes * design.shape[1])
    out = minimize(loss, start, jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 5000})
    return out.x.reshape(classes, -1)
