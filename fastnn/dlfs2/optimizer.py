"""The book's vol. 2 common/optimizer.py: fastnn.optim's optimizers, which take the
``update(model.params, model.grads)`` lists of vol. 2 (state kept per index) with vol. 2's update
rules, on fused in-place kernels."""

from ..optim import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop  # noqa: F401
from .np import GPU, np  # noqa: F401  (handed over, as the book's module does)

__all__ = ["np", "GPU", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]
