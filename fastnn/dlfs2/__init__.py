"""Drop-ins for *Deep Learning from Scratch 2* (vol. 2), one module per file of the book.

The book's ``from common.X import ...`` becomes ``from fastnn.dlfs2.X import ...`` and its
chapter files' ``from chNN.X import ...`` becomes ``from fastnn.dlfs2.X import ...``:
``layers``, ``time_layers``, ``functions``, ``optimizer``, ``trainer``, ``util``, ``base_model``,
``np`` and ``config`` (the CPU/GPU switch), ``negative_sampling_layer``, ``attention_layer``,
the models (``simple_rnnlm``, ``rnnlm``, ``better_rnnlm``, ``seq2seq``, ``peeky_seq2seq``,
``attention_seq2seq``, ``cbow``, ``skip_gram``, ``simple_cbow``, ``simple_skip_gram``,
``two_layer_net``) and the data sets ``dataset.ptb``, ``dataset.sequence``, ``dataset.spiral``.
Star-imports hand over the names the book's modules hand over (``np`` among them), so a chapter
file runs with only its imports changed.
"""
