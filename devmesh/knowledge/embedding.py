"""Text to vectors: the ``Embedder`` role and its three mechanisms.

The default, ``Model2VecEmbedder``, runs the static model shipped in
``devmesh/knowledge/model`` (distilled from all-MiniLM-L6-v2 by
``scripts/distill-embedding-model``): no torch, no network, ~15 MB, thousands of
lines a second on one core. ``SentenceTransformersEmbedder`` (imported only when
chosen; not a dependency) and ``OpenAIEmbedder`` (any OpenAI-compatible
``/embeddings`` endpoint) are settings away.

Every embedder answers unit-length float32 rows of ``DIMENSIONS`` columns: the
PostgreSQL column is ``vector(256)`` and cosine similarity is then a dot product.
Embedding is CPU-bound, so local models run in a worker thread, a bounded batch at
a time, and the event loop keeps serving.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio.to_thread
import httpx
import numpy as np
import numpy.typing as npt

from devmesh.domain.errors import Unavailable

if TYPE_CHECKING:
    from devmesh.config import KnowledgeSettings

__all__ = [
    "DIMENSIONS",
    "SHIPPED_MODEL",
    "Embedder",
    "Model2VecEmbedder",
    "OpenAIEmbedder",
    "SentenceTransformersEmbedder",
    "Vectors",
    "build_embedder",
    "normalise",
]

DIMENSIONS = 256
SHIPPED_MODEL = Path(__file__).parent / "model"
# Past this, a text adds cost and little meaning (static models average tokens).
_MAX_TEXT_CHARS = 4000

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    @property
    def dimensions(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit-length float32 row per text."""
        ...


def normalise(matrix: npt.ArrayLike) -> Vectors:
    rows = np.asarray(matrix, dtype=np.float32)
    if rows.ndim == 1:
        rows = rows.reshape(1, -1)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    # An all-zero row (text of unknown tokens only) stays zero: similar to nothing.
    result: Vectors = (rows / np.where(norms == 0, 1.0, norms)).astype(np.float32, copy=False)
    return result


def _clipped(texts: Sequence[str]) -> list[str]:
    return [text[:_MAX_TEXT_CHARS] for text in texts]


class _LocalEmbedder:
    """A model run in a worker thread, ``batch_size`` texts at a time."""

    def __init__(self, *, batch_size: int) -> None:
        self._batch_size = batch_size

    @property
    def dimensions(self) -> int:
        return DIMENSIONS

    def _encode(self, texts: list[str]) -> npt.ArrayLike:
        raise NotImplementedError

    async def embed(self, texts: Sequence[str]) -> Vectors:
        texts = _clipped(texts)
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        parts = []
        for start in range(0, len(texts), self._batch_size):
            batch = texts[start : start + self._batch_size]
            parts.append(normalise(await anyio.to_thread.run_sync(self._encode, batch)))
        return np.vstack(parts)


class Model2VecEmbedder(_LocalEmbedder):
    """The shipped static model (or another model2vec directory). Loaded on first
    use, once per process: services that never embed pay nothing at start-up."""

    def __init__(self, model: Path | str = SHIPPED_MODEL, *, batch_size: int = 512) -> None:
        super().__init__(batch_size=batch_size)
        self._path = str(model)

    def _encode(self, texts: list[str]) -> npt.ArrayLike:
        model = _static_model(self._path)
        vectors: npt.ArrayLike = model.encode(
            texts, batch_size=len(texts), use_multiprocessing=False
        )
        return vectors


@functools.cache
def _static_model(path: str) -> Any:
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(path)
    if int(model.dim) != DIMENSIONS:
        raise ValueError(f"knowledge.model gives {model.dim} dimensions, {DIMENSIONS} needed")
    return model


class SentenceTransformersEmbedder(_LocalEmbedder):
    """A sentence-transformers model, cut to the first 256 dimensions (Matryoshka
    models keep their meaning there; others lose some)."""

    def __init__(self, model: str, *, batch_size: int = 64) -> None:
        super().__init__(batch_size=batch_size)
        try:
            from sentence_transformers import (  # type: ignore[import-not-found]
                SentenceTransformer,
            )
        except ImportError as exc:
            raise ValueError(
                "knowledge.embedder is sentence-transformers but the package is not "
                "installed: pip install sentence-transformers"
            ) from exc
        self._model: Any = SentenceTransformer(model, device="cpu", truncate_dim=DIMENSIONS)

    def _encode(self, texts: list[str]) -> npt.ArrayLike:
        vectors: npt.ArrayLike = self._model.encode(
            texts, batch_size=len(texts), convert_to_numpy=True
        )
        return vectors


class OpenAIEmbedder:
    """``POST {url}/embeddings`` with ``dimensions: 256`` (text-embedding-3 models and
    most compatible servers honour it)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        url: str,
        model: str,
        api_key: str | None = None,
        batch_size: int = 512,
    ) -> None:
        self._client = client
        self._endpoint = url.rstrip("/") + "/embeddings"
        self._model = model
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._batch_size = batch_size

    @property
    def dimensions(self) -> int:
        return DIMENSIONS

    async def embed(self, texts: Sequence[str]) -> Vectors:
        texts = _clipped(texts)
        parts = [np.zeros((0, DIMENSIONS), dtype=np.float32)]
        for start in range(0, len(texts), self._batch_size):
            batch = texts[start : start + self._batch_size]
            body = {"model": self._model, "input": batch, "dimensions": DIMENSIONS}
            try:
                response = await self._client.post(
                    self._endpoint, json=body, headers=self._headers, timeout=30.0
                )
                response.raise_for_status()
                data = sorted(response.json()["data"], key=lambda item: item["index"])
                rows = normalise([item["embedding"] for item in data])
            except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
                # The message names the endpoint's status, never the request's headers.
                raise Unavailable("the embeddings endpoint did not answer usefully") from exc
            if rows.shape != (len(batch), DIMENSIONS):
                raise Unavailable(
                    f"the embeddings endpoint gave {rows.shape[1]} dimensions, {DIMENSIONS} needed"
                )
            parts.append(rows)
        return np.vstack(parts)


def build_embedder(settings: KnowledgeSettings, *, client: httpx.AsyncClient) -> Embedder:
    """The embedder the settings name; ``client`` is used only by ``openai``."""
    if settings.embedder == "model2vec":
        return Model2VecEmbedder(settings.model or SHIPPED_MODEL, batch_size=settings.batch_size)
    if settings.embedder == "sentence-transformers":
        if not settings.model:
            raise ValueError("knowledge.model is needed for embedder sentence-transformers")
        return SentenceTransformersEmbedder(settings.model, batch_size=settings.batch_size)
    if not settings.url or not settings.model:
        raise ValueError("knowledge.url and knowledge.model are needed for embedder openai")
    key = settings.api_key.get_secret_value() if settings.api_key else None
    return OpenAIEmbedder(
        client, url=settings.url, model=settings.model, api_key=key, batch_size=settings.batch_size
    )
