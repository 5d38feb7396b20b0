"""Tokenizers behind one interface: a word-level one trained on the dataset's own text.

    tok = WordTokenizer.train(texts)          # every template word, category and digit
    ids = tok.encode("Is the chair left of <ref>the table</ref>?")
    tok.decode(ids) == "Is the chair left of <ref>the table</ref>?"
    tok.save(workdir); WordTokenizer.load(workdir)

Why word level: the questions come from a closed template library, so a vocabulary of the
words seen in the training text covers every question; numbers are split into digits so every
count and every `<box>` coordinate (0..1000) is covered without a token per number; markup tags
(`<ref>`, `</box>`, `[[`) are single tokens. Each token carries its leading space, so decoding
is exact; a word never seen in training falls back to its characters, then to bytes, so no
text is ever unencodable. A pretrained model brings its own tokenizer (sentencepiece) through
the same `Tokenizer` protocol.
"""

from __future__ import annotations

import collections
import hashlib
import json
import pathlib
import re
from collections.abc import Iterable
from typing import Protocol

from jax_spatial.errors import UserError

FILENAME = "tokenizer.json"
SPECIALS = ("<pad>", "<bos>", "<eos>", "<sep>")
# Markup tags, digits, words, single punctuation; each with the whitespace before it.
_PIECE = re.compile(r"\s*(?:</?(?:ref|box|image)>|\[\[|\]\]|\d|[^\W\d]+|\S)|\s+")


class Tokenizer(Protocol):
    """What the trainer needs of any tokenizer (this one, or a pretrained model's)."""

    pad_id: int
    bos_id: int
    eos_id: int

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def fingerprint(self) -> str: ...

    def save(self, directory: str | pathlib.Path) -> pathlib.Path: ...


def pieces(text: str) -> list[str]:
    """`"Is the <ref>x</ref>?"` -> `["Is", " the", " <ref>", "x", "</ref>", "?"]`."""
    return _PIECE.findall(text)


class WordTokenizer:
    """Word-level vocabulary with a character and byte fallback (see the module docstring).

    Ids: the specials first (`<pad>` = 0), then 256 byte tokens, then the pieces by frequency.
    """

    def __init__(self, vocab: list[str]):
        if list(vocab[: len(SPECIALS)]) != list(SPECIALS):
            raise UserError(f"tokenizer vocabulary must start with {SPECIALS}")
        self.vocab = list(vocab)
        self._ids = {piece: i for i, piece in enumerate(self.vocab)}
        if len(self._ids) != len(self.vocab):
            raise UserError("tokenizer vocabulary has duplicate entries")
        self.pad_id, self.bos_id, self.eos_id, self.sep_id = range(len(SPECIALS))
        self._byte0 = len(SPECIALS)

    @classmethod
    def train(cls, texts: Iterable[str], min_count: int = 1) -> WordTokenizer:
        """The pieces of `texts` seen at least `min_count` times, most frequent first."""
        counts = collections.Counter()
        for text in texts:
            counts.update(pieces(text))
        byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
        words = sorted(
            (p for p, c in counts.items() if c >= min_count), key=lambda p: (-counts[p], p)
        )
        # Single characters (with and without a space) guarantee the character fallback.
        chars = sorted({ch for p in counts for ch in p.strip()} | set("0123456789"))
        extra = [c for c in chars if c not in counts] + [
            " " + c for c in chars if " " + c not in counts
        ]
        return cls([*SPECIALS, *byte_tokens, *words, *extra])

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        return self.encode_with_offsets(text)[0]

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and, per id, the `(start, end)` characters of `text` it came from (the
        characters or bytes of an unseen word each carry that word's whole span)."""
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        for match in _PIECE.finditer(text):
            piece, span = match.group(), match.span()
            known = self._ids.get(piece)
            if known is not None:
                ids.append(known)
                spans.append(span)
                continue
            for ch in piece:  # unseen word: characters, then UTF-8 bytes
                known = self._ids.get(ch)
                new = [known] if known is not None else [self._byte0 + b for b in ch.encode()]
                ids.extend(new)
                spans.extend([span] * len(new))
        return ids, spans

    def decode(self, ids: Iterable[int]) -> str:
        out: list[str] = []
        pending = bytearray()
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i < len(SPECIALS) or i >= len(self.vocab):
                continue
            if i < self._byte0 + 256:
                pending.append(i - self._byte0)
                continue
            if pending:
                out.append(pending.decode("utf-8", errors="replace"))
                pending.clear()
            out.append(self.vocab[i])
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
        return "".join(out)

    def fingerprint(self) -> str:
        """A hash of the vocabulary: a checkpoint records it to refuse another tokenizer."""
        return hashlib.sha256("\n".join(self.vocab).encode()).hexdigest()[:16]

    def to_json(self) -> dict:
        return {"kind": "word", "vocab": self.vocab, "fingerprint": self.fingerprint()}

    @classmethod
    def from_json(cls, data: dict, where: str = "tokenizer") -> WordTokenizer:
        if not isinstance(data, dict) or data.get("kind") != "word" or "vocab" not in data:
            raise UserError(f"{where}: not a jax_spatial word tokenizer")
        tok = cls(list(data["vocab"]))
        if data.get("fingerprint") not in (None, tok.fingerprint()):
            raise UserError(f"{where}: vocabulary does not match its recorded fingerprint")
        return tok

    def save(self, directory: str | pathlib.Path) -> pathlib.Path:
        path = pathlib.Path(directory) / FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json()))
        return path

    @classmethod
    def load(cls, directory: str | pathlib.Path) -> WordTokenizer:
        path = pathlib.Path(directory)
        path = path / FILENAME if path.is_dir() else path
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as error:
            raise UserError(f"no tokenizer at {path}") from error
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"{path}: not a tokenizer file ({error})") from error
        return cls.from_json(data, str(path))


# Saved tokenizers by their `kind`: this module's, and a pretrained model's (imported lazily).
KINDS = {
    "word": "jax_spatial.train.tokenizer:WordTokenizer",
    "sentencepiece": "jax_spatial.train.models.gemma3.tokenizer:GemmaTokenizer",
}


def from_json(data: dict, where: str = "tokenizer") -> Tokenizer:
    """The tokenizer a checkpoint saved (`to_json`), of whichever kind it is."""
    import importlib

    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in KINDS:
        raise UserError(f"{where}: unknown tokenizer kind {kind!r}; known: {', '.join(KINDS)}")
    module, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name).from_json(data, where)


__all__ = ["FILENAME", "KINDS", "SPECIALS", "Tokenizer", "WordTokenizer", "from_json", "pieces"]
