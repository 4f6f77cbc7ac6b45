"""torch.nn-compatible modules on NumPy arrays: ``from fastnn.nn import LSTM``."""

from .rnn import GRU, LSTM, RNN

__all__ = ["RNN", "LSTM", "GRU"]
