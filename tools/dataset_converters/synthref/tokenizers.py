"""The tokenizers SynthRef ships with, trained on its own sentences (no pretrained tokenizer can
be downloaded here): an XLM-R-style unigram sentencepiece model and a BERT ``vocab.txt``."""
import os
import os.path as osp
from typing import List


def train_tokenizer(sentences: List[str], folder: str, vocab_size: int = 64) -> None:
    """Train a unigram sentencepiece model (as XLM-R's) on ``sentences`` into ``folder``."""
    import sentencepiece as spm
    os.makedirs(folder, exist_ok=True)
    words = sorted({w for s in sentences for w in s.split()})
    corpus = osp.join(folder, 'corpus.txt')
    with open(corpus, 'w') as f:  # every word on its own too, so each stays one piece
        f.write('\n'.join(sentences + words * 5))
    vocab_size = max(vocab_size, 2 * len(words) + len({c for w in words for c in w}) + 8)
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=osp.join(folder, 'sentencepiece.bpe'), vocab_size=vocab_size,
        model_type='unigram', character_coverage=1.0, minloglevel=2, num_threads=1,
        hard_vocab_limit=False)
    os.remove(corpus)
    os.remove(osp.join(folder, 'sentencepiece.bpe.vocab'))


def write_bert_vocab(sentences: List[str], folder: str) -> None:
    """A BERT (WordPiece, uncased) ``vocab.txt``: BERT's special tokens, then every word."""
    os.makedirs(folder, exist_ok=True)
    words = sorted({w for s in sentences for w in s.lower().split()})
    with open(osp.join(folder, 'vocab.txt'), 'w') as f:
        f.write('\n'.join(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + words) + '\n')
