"""fastnn.trainer.Trainer: histories, epochs, optimizers, progress output, and stopping:
Ctrl-C between steps, checkpoints that resume exactly, NaN losses."""

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


# ------------------------------------------------------------------ stop, checkpoint, resume

def _extend_net(seed):
    from fastnn.models import MultiLayerNetExtend
    np.random.seed(seed)
    return MultiLayerNetExtend(8, [12, 10], 3, use_batchnorm=True, use_dropout=True,
                               dropout_ration=0.2)


def _trainer(net, data, optimizer, epochs=3):
    x, t, xt, tt = data
    return Trainer(net, x, t, xt, tt, epochs=epochs, mini_batch_size=32, optimizer=optimizer,
                   optimizer_param={}, verbose=False)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop",
                                       "adam"])
@pytest.mark.parametrize("stop_at", [13, 16])  # mid-epoch, and at the end of epoch 2
def test_interrupted_run_resumes_to_the_same_parameters(data, tmp_path, optimizer, stop_at):
    """Batch order, dropout masks, batch-norm statistics and optimizer state all continue:
    the resumed run ends bit for bit where an uninterrupted one does."""
    net = _extend_net(7)
    np.random.seed(11)
    full = _trainer(net, data, optimizer)
    full.train()

    first = _extend_net(7)
    np.random.seed(11)
    tr = _trainer(first, data, optimizer)

    def stop(trainer):
        if trainer.current_iter == stop_at:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        tr.train(on_step_end=stop)
    assert tr.current_iter == stop_at and not tr.in_step
    tr.save_checkpoint(tmp_path / "ckpt.safetensors", {"note": "mine"})

    np.random.seed(999)                       # whatever happens in between
    second = _extend_net(123)
    resumed = _trainer(second, data, optimizer)
    assert resumed.load_checkpoint(tmp_path / "ckpt.safetensors") == {"note": "mine"}
    assert resumed.current_iter == stop_at
    acc = resumed.train()
    for k in net.params:
        np.testing.assert_array_equal(second.params[k], net.params[k], err_msg=k)
    for k, v in net.buffers().items():
        np.testing.assert_array_equal(second.buffers()[k], v, err_msg=k)
    assert resumed.train_loss_list == full.train_loss_list
    assert resumed.test_acc_list == full.test_acc_list and acc == full.test_acc_list[-1]


def test_ctrl_c_during_a_step_stops_after_it(data, capsys):
    import os
    import signal
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is handled by someone else here")
    net = _extend_net(1)
    tr = _trainer(net, data, "adam")
    real = tr.optimizer.update

    def update(params, grads):
        if tr.current_iter == 5:
            os.kill(os.getpid(), signal.SIGINT)   # arrives in the middle of step 6
        real(params, grads)
    tr.optimizer.update = update
    with pytest.raises(KeyboardInterrupt):
        tr.train()
    assert tr.current_iter == 6 and not tr.in_step       # step 6 completed, nothing after it
    assert len(tr.train_loss_list) == 6 and tr.optimizer.iter == 6
    assert "stopping after this step" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_nan_loss_stops_before_the_update(data):
    from fastnn.trainer import TrainingDiverged
    x, t, xt, tt = data
    net = MultiLayerNet(8, [6], 3)
    bad = x.copy()
    bad[40] = np.nan                              # one batch holds every image
    tr = Trainer(net, bad, t, xt, tt, epochs=2, mini_batch_size=250, verbose=False)
    with pytest.raises(TrainingDiverged, match=r"the loss is nan at epoch 1, iteration 1/1: "
                                               r"training diverged"):
        tr.train()
    assert all(np.isfinite(p).all() for p in net.params.values())
    assert tr.current_iter == 0 and not tr.in_step
    tr = Trainer(net, bad, t, xt, tt, epochs=1, mini_batch_size=250, verbose=False,
                 stop_on_nan=False)
    tr.train()                                    # the book's behaviour, on request
    assert np.isnan(tr.train_loss_list[0])


def test_checkpoint_must_fit_the_run(data, tmp_path):
    from fastnn.models import ParamsError
    tr = _trainer(_extend_net(0), data, "adam", epochs=1)
    tr.train()
    tr.save_checkpoint(tmp_path / "c.safetensors")
    with pytest.raises(ParamsError, match="saved with optimizer Adam, this run uses SGD"):
        _trainer(_extend_net(0), data, "sgd").load_checkpoint(tmp_path / "c.safetensors")
    x, t, xt, tt = data
    other = Trainer(_extend_net(0), x[:100], t[:100], xt, tt, mini_batch_size=32,
                    optimizer="adam", verbose=False)
    with pytest.raises(ParamsError, match="saved with train_size 250, this run has 100"):
        other.load_checkpoint(tmp_path / "c.safetensors")
    with pytest.raises(ParamsError, match="not a fastnn training checkpoint"):
        tr.load_checkpoint(_saved_model(tmp_path))


def _saved_model(tmp_path):
    path = tmp_path / "m.safetensors"
    MultiLayerNet(8, [6], 3).save_params(path)
    return path
