"""The only home of SQL: one connection to one SQLite file, split by what it stores.

The schema comes from `migrations.py`, applied when a store opens. WAL mode
lets readers (people, export) run while a scan writes. Writers take an OS
file lock beside the database, so a second scan waits a bounded time and
then refuses with a message naming the process that holds it; the lock
dies with its process, so a killed scan never leaves a stale lock.

`Store` joins the parts (each a class over the same `self.db`): base (open, migrate, lock),
photos (scan), faces (a face's crop, drawn faces, quality), embeddings (vectors per embedder),
people (names, decisions), history (actions, undo), queries (read models).
"""

from __future__ import annotations

from facecluster.store.base import StoreBase
from facecluster.store.rows import (
    ActionRow,
    Decisions,
    DrawPhoto,
    ExportFace,
    Failure,
    GroupingInputs,
    ImportPhoto,
    ModelInfo,
    NOT_A_PERSON,
    PersonCentres,
    PersonFace,
    PersonRow,
    PersonSummary,
    PhotoFaceRow,
    PhotoFilter,
    PhotoHit,
    PhotoRow,
    StoreInfo,
    SuggestionInputs,
    blob_to_embedding,
    embedding_to_blob,
    from_db_path,
    now,
    to_db_path,
)
from facecluster.store.embeddings import EmbeddingStore, FaceToEmbed
from facecluster.store.faces import FaceStore
from facecluster.store.history import HistoryStore
from facecluster.store.people import PeopleStore
from facecluster.store.photos import PhotoStore
from facecluster.store.queries import QueryStore


class Store(PhotoStore, FaceStore, EmbeddingStore, PeopleStore, HistoryStore, QueryStore, StoreBase):
    """An open facecluster database.

    Example:
        store = Store("library.db"); store.counts()
    """


__all__ = [
    "Store",
    "ActionRow",
    "Decisions",
    "DrawPhoto",
    "ExportFace",
    "FaceToEmbed",
    "Failure",
    "GroupingInputs",
    "ImportPhoto",
    "ModelInfo",
    "NOT_A_PERSON",
    "PersonCentres",
    "PersonFace",
    "PersonRow",
    "PersonSummary",
    "PhotoFaceRow",
    "PhotoFilter",
    "PhotoHit",
    "PhotoRow",
    "StoreInfo",
    "SuggestionInputs",
    "blob_to_embedding",
    "embedding_to_blob",
    "from_db_path",
    "now",
    "to_db_path",
]
