"""The book's ch07/peeky_seq2seq.py: the decoder "peeks" at the encoder's state h at every step
(h is concatenated before the LSTM's input and before the Affine's)."""

from .np import np
from .seq2seq import Encoder, Seq2seq
from .time_layers import TimeAffine, TimeEmbedding, TimeLSTM, TimeSoftmaxWithLoss

__all__ = ["PeekyDecoder", "PeekySeq2seq"]


class PeekyDecoder:
    def __init__(self, vocab_size, wordvec_size, hidden_size):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rn = np.random.randn
        embed_W = (rn(V, D) / 100).astype('f')
        lstm_Wx = (rn(H + D, 4 * H) / np.sqrt(H + D)).astype('f')
        lstm_Wh = (rn(H, 4 * H) / np.sqrt(H)).astype('f')
        lstm_b = np.zeros(4 * H).astype('f')
        affine_W = (rn(H + H, V) / np.sqrt(H + H)).astype('f')
        affine_b = np.zeros(V).astype('f')
        self.embed = TimeEmbedding(embed_W)
        self.lstm = TimeLSTM(lstm_Wx, lstm_Wh, lstm_b, stateful=True)
        self.affine = TimeAffine(affine_W, affine_b)
        layers = (self.embed, self.lstm, self.affine)
        self.params = [p for layer in layers for p in layer.params]
        self.grads = [g for layer in layers for g in layer.grads]
        self.cache = None

    def forward(self, xs, h):
        N, T = xs.shape
        H = h.shape[1]
        self.lstm.set_state(h)
        hs = np.repeat(h, T, axis=0).reshape(N, T, H)
        out = self.lstm.forward(np.concatenate((hs, self.embed.forward(xs)), axis=2))
        self.cache = H
        return self.affine.forward(np.concatenate((hs, out), axis=2))

    def backward(self, dscore):
        H = self.cache
        dout = self.affine.backward(dscore)
        dout, dhs0 = dout[:, :, H:], dout[:, :, :H]
        dout = self.lstm.backward(dout)
        dembed, dhs1 = dout[:, :, H:], dout[:, :, :H]
        self.embed.backward(dembed)
        return self.lstm.dh + np.sum(dhs0 + dhs1, axis=1)

    def generate(self, h, start_id, sample_size):
        sampled = []
        char_id = start_id
        self.lstm.set_state(h)
        peeky_h = h.reshape(1, 1, h.shape[1])
        for _ in range(sample_size):
            x = np.array([char_id]).reshape((1, 1))
            out = np.concatenate((peeky_h, self.embed.forward(x)), axis=2)
            out = np.concatenate((peeky_h, self.lstm.forward(out)), axis=2)
            char_id = np.argmax(self.affine.forward(out).flatten())
            sampled.append(int(char_id))
        return sampled


class PeekySeq2seq(Seq2seq):
    def __init__(self, vocab_size, wordvec_size, hidden_size):
        V, D, H = vocab_size, wordvec_size, hidden_size
        self.encoder = Encoder(V, D, H)
        self.decoder = PeekyDecoder(V, D, H)
        self.softmax = TimeSoftmaxWithLoss()
        self.params = self.encoder.params + self.decoder.params
        self.grads = self.encoder.grads + self.decoder.grads
