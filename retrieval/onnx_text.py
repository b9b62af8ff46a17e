"""The packaged text model as an ONNX graph run by onnxruntime: exported once, at install time.

`manage.py export_text_model` (run by `make install`) traces the sentence-transformers model
(transformer, mean pooling, L2 normalization) to ONNX, fuses its attention and layer-norm
nodes and, for the int8 file, quantizes the weights of its matrix products (attention
projections included) per channel.
Queries and ingestion then need neither torch nor transformers: the tokenizer is the model's
own tokenizer.json, read by the `tokenizers` library.
"""

from __future__ import annotations

import json
import os
import secrets
import warnings
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .encoders import ModelInfo, TextEncoder, configured_choice, text_model_path

PRECISIONS = ("int8", "fp32")
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
EXPORT_HINT = "run `make text-model` (or `python manage.py export_text_model`)"


def onnx_dir() -> Path:
    """Return the directory that holds exported text models (REELSEARCH['TEXT_ONNX_DIR'])."""
    return Path(str(settings.REELSEARCH["TEXT_ONNX_DIR"])).expanduser()


def writable_onnx_dir() -> Path:
    """Return onnx_dir(), created if missing (exports write there)."""
    directory = onnx_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(
            f"cannot create {directory} ({exc}): set REELSEARCH_TEXT_ONNX_DIR to a "
            "writable directory.") from exc
    return directory


def onnx_session(path: Path, threads: int):
    """Return an onnxruntime CPU session over ``path`` (threads: 0 = onnxruntime's choice)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(int(threads), 0)
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def precision() -> str:
    """Return the configured precision of the ONNX text model, checked."""
    return configured_choice("TEXT_ONNX_PRECISION", PRECISIONS)


# File-name tag of each precision's export recipe: a changed recipe gets a new file, which
# `make text-model` exports beside the old one. "int8-qa": the attention projections are
# quantized too (QAttention), not only the other matrix products.
RECIPES = {"fp32": "fp32", "int8": "int8-qa"}


def onnx_path(model_version: str, kind: str | None = None) -> Path:
    """Return where the ONNX file of the configured text model at this version lives."""
    name = settings.REELSEARCH["TEXT_MODEL"]
    return onnx_dir() / f"{name}-{model_version}-{RECIPES[kind or precision()]}.onnx"


def model_version(path: Path, version: str) -> str:
    """Return the version used in file names ("local" models get a fingerprint of their files)."""
    if version != "local":
        return version
    from .encoders import _fingerprint

    return f"local-{_fingerprint(path)}"


def max_length(model_dir: Path) -> int:
    """Return the model's max_seq_length (sentence-transformers truncates there)."""
    config = model_dir / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


class OnnxTextEncoder(TextEncoder):
    """The configured text model through onnxruntime.

    Queries run one at a time through the TEXT_ONNX_PRECISION file (int8 by default: mean
    cosine 0.99 to torch). Batches of segments run through the fp32 file, whose vectors equal
    torch's: int8 activations are quantized with one scale per batch, so an int8 vector
    would depend on the texts it was batched with.
    """

    def __init__(self) -> None:
        model_dir, version = text_model_path()
        self.version = model_version(model_dir, version)
        self.path = self._file(precision())
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length(model_dir))
        self.query_session = self._session(settings.REELSEARCH["QUERY_THREADS"])
        self._batch_session = None
        dim = int(self.query_session.get_outputs()[0].shape[-1])
        expected = settings.REELSEARCH["TEXT_DIM"]
        if dim != expected:
            raise ImproperlyConfigured(
                f"The text model gives {dim}-d vectors but REELSEARCH['TEXT_DIM'] is {expected}:"
                " set REELSEARCH_TEXT_DIM to match and run `manage.py reindex`.")
        super().__init__(ModelInfo(settings.REELSEARCH["TEXT_MODEL"], version, dim))

    def _file(self, kind: str) -> Path:
        path = onnx_path(self.version, kind)
        if not path.exists():
            raise ImproperlyConfigured(
                f"The ONNX text model {path.name} is missing from {path.parent}: "
                f"{EXPORT_HINT} once after installing (it exports the packaged model), or "
                "set REELSEARCH_TEXT_RUNTIME=torch.")
        return path

    def _session(self, threads: int, path: Path | None = None):
        return onnx_session(path or self.path, threads)

    def _run(self, session, encodings) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            ids[row, :len(encoding.ids)] = encoding.ids
            mask[row, :len(encoding.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return _unit(session.run(None, feed)[0])

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Return one L2-normalized row per text (batches of similar length, little padding)."""
        if not texts:
            return np.zeros((0, self.info.dim), dtype=np.float32)
        if self._batch_session is None:
            self._batch_session = self._session(settings.REELSEARCH.get("ENCODE_THREADS", 0),
                                                self._file("fp32"))
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(texts), self.info.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            out[rows] = self._run(self._batch_session, [encodings[i] for i in rows])
        return out

    def _encode_query(self, text: str) -> np.ndarray:
        return self._run(self.query_session, [self.tokenizer.encode(text)])[0]


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


# --------------------------------------------------------------------------- export


def export(kinds: tuple[str, ...] = PRECISIONS, force: bool = False) -> list[Path]:
    """Export the configured text model to ONNX in each precision; return the files."""
    model_dir, version = text_model_path()
    targets = {kind: onnx_path(model_version(model_dir, version), kind) for kind in kinds}
    todo = {kind: path for kind, path in targets.items() if force or not path.exists()}
    if todo:
        directory = writable_onnx_dir()
        scratch = directory / f".export-{os.getpid()}-{secrets.token_hex(4)}"
        scratch.mkdir()
        try:
            fused = _fused_graph(model_dir, scratch)
            for kind, path in todo.items():
                made = fused if kind == "fp32" else _quantized(fused, scratch)
                os.replace(made, path)  # atomic: a reader sees the old file or the new one
        finally:
            for leftover in scratch.iterdir():
                leftover.unlink()
            scratch.rmdir()
    return list(targets.values())


def _fused_graph(model_dir: Path, scratch: Path) -> Path:
    """Trace transformer + mean pooling + normalization, then fuse attention nodes."""
    import torch
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_dir, local_files_only=True,
                                      attn_implementation="eager").eval()
    traced = scratch / "traced.onnx"
    example = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shapes fixed while tracing
        torch.onnx.export(_pooled(model), (example, example, torch.zeros_like(example)),
                          str(traced), input_names=list(INPUTS), output_names=["embedding"],
                          dynamic_axes={**axes, "embedding": {0: "batch"}}, opset_version=17,
                          dynamo=False)
    config = model.config
    fused = optimizer.optimize_model(str(traced), model_type="bert", opt_level=1,
                                     num_heads=config.num_attention_heads,
                                     hidden_size=config.hidden_size)
    path = scratch / "fp32.onnx"
    fused.save_model_to_file(str(path))
    return path


def _quantized(fused: Path, scratch: Path) -> Path:
    """Quantize the matrix products' weights to int8, per output channel (embeddings stay).

    The fused attention nodes' Q/K/V projections too (QAttention): on one core that takes a
    9-token query from 4.6 to 3.1 ms.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = scratch / "int8.onnx"
    quantize_dynamic(str(fused), str(path), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Attention"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return path


def _pooled(model):
    """Wrap the transformer with sentence-transformers' mean pooling and Normalize."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            tokens = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    return Pooled()
