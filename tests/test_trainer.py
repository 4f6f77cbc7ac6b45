"""fastnn.trainer.Trainer: histories, epochs, optimizers and progress output."""

import numpy as np
import pytest

from fastnn import optim
from fastnn.models import MultiLayerNet
from fastnn.trainer import Trainer


def blobs(rng, centers, n):
    """Samples of Gaussian blobs around ``centers`` (one per class)."""
    t = rng.integers(0, len(centers), n)
    return centers[t] + 0.5 * rng.standard_normal((n, centers.shape[1])), t


@pytest.fixture
def data(rng):
    centers = 3 * rng.standard_normal((3, 8))
    (x, t), (xt, tt) = blobs(rng, centers, 250), blobs(rng, centers, 60)
    return x, t, xt, tt


def test_histories_and_learning(data):
    np.random.seed(0)
    x, t, xt, tt = data
    net = MultiLayerNet(8, [10], 3)
    tr = Trainer(net, x, t, xt, tt, epochs=4, mini_batch_size=32, optimizer='Adam',
                 optimizer_param={'lr': 0.01}, verbose=False)
    acc = tr.train()
    assert tr.iter_per_epoch == 8  # ceil(250 / 32): the last batch of an epoch is smaller
    assert len(tr.train_loss_list) == 32 and tr.current_iter == 32
    assert len(tr.train_acc_list) == len(tr.test_acc_list) == len(tr.epoch_time_list) == 4
    assert tr.current_epoch == 4 and isinstance(tr.optimizer, optim.Adam)
    assert np.mean(tr.train_loss_list[-4:]) < 0.5 * np.mean(tr.train_loss_list[:4])
    assert tr.test_acc_list[-1] > 0.9 and acc == tr.test_acc_list[-1]
    assert acc == pytest.approx(net.accuracy(xt, tt))
    assert all(isinstance(v, float) for v in tr.train_loss_list)


def test_each_epoch_sees_every_image_once(data, monkeypatch):
    x, t, xt, tt = data
    net = MultiLayerNet(8, [4], 3)
    seen = []
    real = net.gradient

    def spy(xb, tb):
        seen.append(len(xb))
        return real(xb, tb)
    monkeypatch.setattr(net, "gradient", spy)
    Trainer(net, x, t, xt, tt, epochs=2, mini_batch_size=100, verbose=False).train()
    assert seen == [100, 100, 50, 100, 100, 50]


def test_same_seed_same_run(data):
    x, t, xt, tt = data
    runs = []
    for _ in range(2):
        np.random.seed(5)
        net = MultiLayerNet(8, [6], 3)
        tr = Trainer(net, x, t, xt, tt, epochs=2, mini_batch_size=50, optimizer='momentum',
                     verbose=False)
        tr.train()
        runs.append(tr.train_loss_list)
    assert runs[0] == runs[1]


def test_evaluate_sample_num_and_train_step(data):
    x, t, xt, tt = data
    net = MultiLayerNet(8, [6], 3)
    tr = Trainer(net, x, t, xt, tt, epochs=1, mini_batch_size=125, optimizer='SGD',
                 optimizer_param={'lr': 0.1}, evaluate_sample_num_per_epoch=40, verbose=False)
    tr.train_step()
    assert tr.train_acc_list == [] and len(tr.train_loss_list) == 1
    tr.train_step()
    assert tr.train_acc_list[0] == pytest.approx(net.accuracy(x[:40], t[:40]))
    assert tr.test_acc_list[0] == pytest.approx(net.accuracy(xt[:40], tt[:40]))


def test_loss_comes_from_the_gradient_pass_or_the_books_way(data):
    x, t, xt, tt = data

    class BookNet:  # a network written against the book: no last_loss attribute
        def __init__(self):
            self.inner = MultiLayerNet(8, [6], 3)
            self.params = self.inner.params
            self.loss_calls = 0

        def gradient(self, xb, tb):
            g = self.inner.gradient(xb, tb)
            del self.inner.last_loss
            return g

        def loss(self, xb, tb):
            self.loss_calls += 1
            return self.inner.loss(xb, tb)

        def accuracy(self, xb, tb):
            return self.inner.accuracy(xb, tb)

    net = BookNet()
    tr = Trainer(net, x, t, xt, tt, epochs=1, mini_batch_size=250, verbose=False)
    tr.train()
    assert net.loss_calls == 1 and len(tr.train_loss_list) == 1


def test_verbose_prints_epoch_lines(data, capsys):
    x, t, xt, tt = data
    Trainer(MultiLayerNet(8, [6], 3), x, t, xt, tt, epochs=2, mini_batch_size=50).train()
    out = capsys.readouterr()
    assert out.out.count("=== epoch:") == 2 and "img/s" in out.out
    assert "test acc:" in out.out and "Final Test Accuracy" in out.out
    assert "batch" in out.err  # the tqdm bar


def test_bad_arguments(data):
    x, t, xt, tt = data
    net = MultiLayerNet(8, [6], 3)
    with pytest.raises(ValueError, match="unknown optimizer 'adamw'"):
        Trainer(net, x, t, xt, tt, optimizer='adamw')
    with pytest.raises(ValueError, match="mini_batch_size"):
        Trainer(net, x, t, xt, tt, mini_batch_size=0)
    with pytest.raises(ValueError, match="x_train is empty"):
        Trainer(net, x[:0], t[:0], xt, tt)
    tr = Trainer(net, x, t, xt, tt, optimizer=optim.Nesterov(lr=0.05), verbose=False)
    assert tr.optimizer.lr == 0.05
