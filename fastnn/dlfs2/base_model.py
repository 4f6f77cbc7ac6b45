"""The book's vol. 2 common/base_model.py: a model base class with ``params``/``grads`` lists
and ``save_params``/``load_params`` in the book's file format (a pickled list of float16 arrays,
``<ClassName>.pkl`` by default), so the book's trained .pkl files load here and ours there.

Loading reads only plain data: a file holding anything but lists, tuples, numbers, strings and
NumPy arrays is refused (fastnn's restricted unpickler), since a pickle could run code.
"""

import os
import pickle

from .._files import atomic_write
from .._safeio import load_pickle
from .np import GPU, np
from .util import to_cpu, to_gpu

__all__ = ["np", "GPU", "to_cpu", "to_gpu", "BaseModel"]


class BaseModel:
    def __init__(self):
        self.params, self.grads = None, None

    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__}.forward: a model built on BaseModel "
                                  "defines its own forward, as the book's models do")

    def backward(self, *args):
        raise NotImplementedError(f"{type(self).__name__}.backward: a model built on BaseModel "
                                  "defines its own backward, as the book's models do")

    def save_params(self, file_name=None):
        """Write the parameters as float16 (half the size; the book's precision on disk)."""
        if file_name is None:
            file_name = self.__class__.__name__ + '.pkl'
        params = [p.astype(np.float16) for p in self.params]
        if GPU:
            params = [to_cpu(p) for p in params]
        with atomic_write(file_name) as f:
            pickle.dump(params, f)

    def load_params(self, file_name=None):
        """Copy the saved arrays into ``params`` in place (as float32), so layers holding them
        see the values. IOError when the file is missing, ValueError when it does not hold one
        array of the right shape per parameter."""
        if file_name is None:
            file_name = self.__class__.__name__ + '.pkl'
        if '/' in file_name:
            file_name = file_name.replace('/', os.sep)
        if not os.path.exists(file_name):
            raise IOError('No file: ' + file_name)
        saved = load_pickle(file_name)
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self.params):
            got = len(saved) if isinstance(saved, (list, tuple)) else type(saved).__name__
            raise ValueError(f"{file_name}: holds {got} arrays but {self.__class__.__name__} "
                             f"has {len(self.params)} parameters")
        for i, (param, value) in enumerate(zip(self.params, saved)):
            if getattr(value, 'shape', None) != param.shape:
                raise ValueError(f"{file_name}: array {i} has shape "
                                 f"{getattr(value, 'shape', None)} but the parameter has shape "
                                 f"{param.shape}")
        for param, value in zip(self.params, saved):
            value = value.astype('f')
            param[...] = to_gpu(value) if GPU else value
