"""The book's ch07/seq2seq.py: an LSTM Encoder whose last state starts an LSTM Decoder."""

from .base_model import BaseModel
from .np import np
from .time_layers import TimeAffine, TimeEmbedding, TimeLSTM, TimeSoftmaxWithLoss

__all__ = ["Encoder", "Decoder", "Seq2seq"]


def _lstm_weights(rn, D, H):
    Wx = (rn(D, 4 * H) / np.sqrt(D)).astype('f')
    Wh = (rn(H, 4 * H) / np.sqrt(H)).astype('f')
    return Wx, Wh, np.zeros(4 * H).astype('f')


class Encoder:
    """Embedding + LSTM over xs (N, T); forward returns the last hidden state (N, H)."""

    def __init__(self, vocab_size, wordvec_size, hidden_size):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rn = np.random.randn
        embed_W = (rn(V, D) / 100).astype('f')
        self.embed = TimeEmbedding(embed_W)
        self.lstm = TimeLSTM(*_lstm_weights(rn, D, H), stateful=False)
        self.params = self.embed.params + self.lstm.params
        self.grads = self.embed.grads + self.lstm.grads
        self.hs = None

    def forward(self, xs):
        self.hs = self.lstm.forward(self.embed.forward(xs))
        return self.hs[:, -1, :]

    def backward(self, dh):
        dhs = np.zeros_like(self.hs)
        dhs[:, -1, :] = dh
        dout = self.lstm.backward(dhs)
        return self.embed.backward(dout)


class Decoder:
    """Embedding + LSTM (started from the encoder's state h) + Affine scores."""

    def __init__(self, vocab_size, wordvec_size, hidden_size):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rn = np.random.randn
        embed_W = (rn(V, D) / 100).astype('f')
        lstm_weights = _lstm_weights(rn, D, H)
        affine_W = (rn(H, V) / np.sqrt(H)).astype('f')
        affine_b = np.zeros(V).astype('f')
        self.embed = TimeEmbedding(embed_W)
        self.lstm = TimeLSTM(*lstm_weights, stateful=True)
        self.affine = TimeAffine(affine_W, affine_b)
        layers = (self.embed, self.lstm, self.affine)
        self.params = [p for layer in layers for p in layer.params]
        self.grads = [g for layer in layers for g in layer.grads]

    def forward(self, xs, h):
        self.lstm.set_state(h)
        return self.affine.forward(self.lstm.forward(self.embed.forward(xs)))

    def backward(self, dscore):
        dout = self.lstm.backward(self.affine.backward(dscore))
        self.embed.backward(dout)
        return self.lstm.dh

    def generate(self, h, start_id, sample_size):
        """Greedy decoding of ``sample_size`` ids from state h (a batch of one)."""
        sampled = []
        sample_id = start_id
        self.lstm.set_state(h)
        for _ in range(sample_size):
            x = np.array(sample_id).reshape((1, 1))
            score = self.affine.forward(self.lstm.forward(self.embed.forward(x)))
            sample_id = np.argmax(score.flatten())
            sampled.append(int(sample_id))
        return sampled


class Seq2seq(BaseModel):
    """Encoder -> Decoder; ``forward(xs, ts)`` teaches the decoder ts[:, 1:] from ts[:, :-1]."""

    def __init__(self, vocab_size, wordvec_size, hidden_size):
        V, D, H = vocab_size, wordvec_size, hidden_size
        self.encoder = Encoder(V, D, H)
        self.decoder = Decoder(V, D, H)
        self.softmax = TimeSoftmaxWithLoss()
        self.params = self.encoder.params + self.decoder.params
        self.grads = self.encoder.grads + self.decoder.grads

    def forward(self, xs, ts):
        decoder_xs, decoder_ts = ts[:, :-1], ts[:, 1:]
        h = self.encoder.forward(xs)
        score = self.decoder.forward(decoder_xs, h)
        return self.softmax.forward(score, decoder_ts)

    def backward(self, dout=1):
        dout = self.softmax.backward(dout)
        dh = self.decoder.backward(dout)
        return self.encoder.backward(dh)

    def generate(self, xs, start_id, sample_size):
        h = self.encoder.forward(xs)
        return self.decoder.generate(h, start_id, sample_size)
