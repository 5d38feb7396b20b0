"""Gemma 3's sentencepiece tokenizer behind the project's `Tokenizer` protocol.

    tok = GemmaTokenizer.from_folder("/ckpt/gemma-3-4b-it")      # its tokenizer.model
    tok = train_tiny(texts)                                       # no checkpoint: gemma3_tiny
    tok.check_model(config, where)                                # ids agree with the model

Ids are the model file's own: `<pad>` 0, `<eos>` 1, `<bos>` 2 in Gemma's; the separator
between question and answer is the newline piece (`<bos>question\\nanswer<eos>`). The
serialized model travels inside every checkpoint (`to_json`, base64), so a run resumes and
predicts without the folder it started from, and its fingerprint (a hash of the file)
refuses another tokenizer.

Without a checkpoint folder (the random `gemma3_tiny`), `train_tiny` trains a small BPE
sentencepiece model on the dataset's own text, with Gemma's special pieces at the ids the
tiny preset expects (`<start_of_image>` 4, `<end_of_image>` 5, `<image_soft_token>` 6, the
newline 7), byte fallback and single digits: the same class and code path as a real
checkpoint's tokenizer, offline.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import pathlib
from collections.abc import Iterable

from jax_spatial.errors import UserError

FILENAME = "tokenizer.model"
KIND = "sentencepiece"
SPECIAL_PIECES = ("<start_of_image>", "<end_of_image>", "<image_soft_token>", "\n")


def _spm():
    try:
        import sentencepiece
    except ImportError as error:  # the `gemma` extra
        raise UserError(
            "gemma3 needs sentencepiece: pip install 'jax-spatial[gemma]'"
        ) from error
    return sentencepiece


class GemmaTokenizer:
    """A sentencepiece model (Gemma's `tokenizer.model`) as a project `Tokenizer`."""

    def __init__(self, proto: bytes, where: str = "tokenizer"):
        spm = _spm()
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(proto)
        except Exception as error:  # noqa: BLE001 - sentencepiece raises RuntimeError/OSError
            raise UserError(f"{where}: not a sentencepiece model ({error})") from error
        self.proto = bytes(proto)
        self.where = where
        sp = self._sp
        self.pad_id, self.bos_id, self.eos_id = sp.pad_id(), sp.bos_id(), sp.eos_id()
        if min(self.pad_id, self.bos_id, self.eos_id) < 0:
            raise UserError(f"{where}: the sentencepiece model lacks <pad>, <bos> or <eos>")
        newline = sp.piece_to_id("\n")
        self.sep_id = None if newline == sp.unk_id() else newline

    # -- the Tokenizer protocol

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return list(self._sp.encode(text))

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if 0 <= i < self.vocab_size and not self._sp.is_control(i):
                out.append(i)
        return self._sp.decode(out)

    def fingerprint(self) -> str:
        return hashlib.sha256(self.proto).hexdigest()[:16]

    def to_json(self) -> dict:
        return {
            "kind": KIND,
            "model": base64.b64encode(self.proto).decode("ascii"),
            "fingerprint": self.fingerprint(),
        }

    @classmethod
    def from_json(cls, data: dict, where: str = "tokenizer") -> GemmaTokenizer:
        if not isinstance(data, dict) or data.get("kind") != KIND or "model" not in data:
            raise UserError(f"{where}: not a sentencepiece tokenizer")
        try:
            proto = base64.b64decode(data["model"], validate=True)
        except (binascii.Error, TypeError) as error:
            raise UserError(f"{where}: the sentencepiece model is not base64 ({error})") from error
        tok = cls(proto, where)
        if data.get("fingerprint") not in (None, tok.fingerprint()):
            raise UserError(f"{where}: model does not match its recorded fingerprint")
        return tok

    def save(self, directory) -> pathlib.Path:
        """`tokenizer.json` (the project's readable copy beside the checkpoints)."""
        path = pathlib.Path(directory) / "tokenizer.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json()))
        return path

    # -- files and checks

    @classmethod
    def from_file(cls, path) -> GemmaTokenizer:
        path = pathlib.Path(path)
        try:
            proto = path.read_bytes()
        except FileNotFoundError as error:
            raise UserError(f"{path}: no tokenizer (expected Gemma's {FILENAME})") from error
        except OSError as error:
            raise UserError(f"{path}: cannot read ({error.strerror})") from error
        return cls(proto, str(path))

    @classmethod
    def from_folder(cls, folder) -> GemmaTokenizer:
        """`tokenizer.model` of a checkpoint folder (or of its parent, Kaggle's layout)."""
        folder = pathlib.Path(folder)
        for candidate in (folder / FILENAME, folder.parent / FILENAME):
            if candidate.is_file():
                return cls.from_file(candidate)
        raise UserError(f"checkpoint folder {folder} has no {FILENAME} (Gemma's tokenizer)")

    def piece_id(self, piece: str) -> int | None:
        i = self._sp.piece_to_id(piece)
        return None if i == self._sp.unk_id() and piece != self._sp.id_to_piece(i) else i

    def check_model(self, config, where: str) -> None:
        """`UserError` unless this tokenizer's ids are the ones `config` (the model) uses."""
        wanted = {
            "<pad>": (self.pad_id, config.pad_id),
            "<bos>": (self.bos_id, config.bos_id),
            "<eos>": (self.eos_id, config.eos_id),
        }
        if config.vision is not None:
            wanted["<start_of_image>"] = (self.piece_id("<start_of_image>"), config.boi_id)
            wanted["<end_of_image>"] = (self.piece_id("<end_of_image>"), config.eoi_id)
        for piece, (have, want) in wanted.items():
            if have != want:
                raise UserError(
                    f"{self.where}: not the tokenizer of {where}: {piece} is id {have}, the "
                    f"model's is {want}"
                )
        if self.vocab_size > config.num_embed:
            raise UserError(
                f"{self.where}: not the tokenizer of {where}: {self.vocab_size} pieces, the "
                f"model embeds {config.num_embed}"
            )


def train_tiny(texts: Iterable[str], vocab_size: int = 512) -> GemmaTokenizer:
    """A small BPE sentencepiece model trained on `texts`, Gemma's specials at ids 4..7
    (deterministic: one thread, the texts in their given order)."""
    spm = _spm()
    lines = [t for t in (str(x).strip() for x in texts) if t]
    if not lines:
        raise UserError("no text to train the gemma3_tiny tokenizer on")
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=buffer,
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # a small dataset may hold fewer merges: fewer pieces
        model_type="bpe",
        pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
        user_defined_symbols=list(SPECIAL_PIECES),
        byte_fallback=True,  # every text encodes, as with Gemma's own model
        split_digits=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        num_threads=1,
        minloglevel=2,
    )
    return GemmaTokenizer(buffer.getvalue(), "gemma3_tiny tokenizer")


__all__ = ["FILENAME", "KIND", "GemmaTokenizer", "train_tiny"]
