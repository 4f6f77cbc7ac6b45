"""BaseNN-style model builder (XEdu's ``from BaseNN import nn``) running on fastnn kernels.

    from fastnn.basenn import nn
    model = nn()
    model.load_dataset(x, y)
    model.add('Linear', size=(4, 10), activation='ReLU')
    model.add('Linear', size=(10, 3), activation='Softmax')
    model.add(optimizer='Adam')
    model.train(lr=0.01, epochs=100)
    res = model.inference(test_x, checkpoint='checkpoints/basenn.pth')
    model.print_result(res)

See ``fastnn.basenn.model`` for the loss convention with a final Softmax and the checkpoint format.
"""

from .model import nn

__all__ = ["nn"]
