"""The schema, built only by these numbered, append-only migrations.

Never edit or reorder a migration that has shipped: add a new one. The store
applies pending migrations when it opens, and refuses a database that has
migrations this version does not know (it was made by a newer facecluster).
docs/schema.md describes every table and column.
"""

from sqlite_utils import Database, Migrations

migrations = Migrations("facecluster")


@migrations()
def m001_photos_faces(db: Database) -> None:
    db["photos"].create(
        {
            "id": int,
            "path": str,
            "size": int,
            "mtime_ns": int,
            "sha256": str,
            "width": int,
            "height": int,
            "taken": str,
            "taken_source": str,
            "camera": str,
            "status": str,
            "error": str,
            "added_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"path", "size", "mtime_ns", "status"},
    )
    db["photos"].create_index(["path"], unique=True)
    db["photos"].create_index(["sha256"])

    db["models"].create(
        {"name": str, "fingerprint": str, "dim": int, "licence": str, "first_used": str},
        pk="name",
    )

    # One row per (photo, model pack) that has been scanned, faces or not:
    # this is what makes "scanned with this pack" a fact rather than a guess.
    db["photo_scans"].create(
        {"photo_id": int, "model": str, "faces": int, "scanned_at": str},
        pk=("photo_id", "model"),
        foreign_keys=[("photo_id", "photos", "id"), ("model", "models", "name")],
    )

    db["faces"].create(
        {
            "id": int,
            "photo_id": int,
            "model": str,
            "x": float,
            "y": float,
            "w": float,
            "h": float,
            "landmarks": str,
            "score": float,
            "size": float,
            "embedding": bytes,
            "thumb": bytes,
        },
        pk="id",
        foreign_keys=[("photo_id", "photos", "id"), ("model", "models", "name")],
        not_null={"photo_id", "model", "embedding"},
    )
    db["faces"].create_index(["photo_id"])
    db["faces"].create_index(["model"])


@migrations()
def m002_people(db: Database) -> None:
    # AUTOINCREMENT so that a group number, once shown to the user, is never
    # given to another group, even after the group is merged away or deleted.
    db.execute(
        """
        CREATE TABLE people (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            model TEXT NOT NULL REFERENCES models(name),
            name TEXT,
            ignored INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX people_model_name ON people (model, name) WHERE name IS NOT NULL")
    db.execute("ALTER TABLE faces ADD COLUMN person_id INTEGER REFERENCES people(id)")
    db.execute("ALTER TABLE faces ADD COLUMN assigned TEXT")
    db["faces"].create_index(["person_id"])
    # "This face is not this person": kept so the face never rejoins by itself.
    db["face_rejections"].create(
        {"face_id": int, "person_id": int, "created_at": str},
        pk=("face_id", "person_id"),
        foreign_keys=[("face_id", "faces", "id"), ("person_id", "people", "id")],
    )


@migrations()
def m003_xmp_names(db: Database) -> None:
    # The name another photo app gave this face in the photo's XMP (digiKam,
    # Lightroom, ...): grouping turns it into a named person.
    db.execute("ALTER TABLE faces ADD COLUMN xmp_name TEXT")


@migrations()
def m004_face_quality(db: Database) -> None:
    # How far a face can be trusted to say who it is (facecluster/quality.py):
    # faces below the gate never seed a group. NULL for faces scanned before
    # this migration; `group` fills those from the stored thumbnail, landmarks,
    # size and score, without running the models again.
    db.execute("ALTER TABLE faces ADD COLUMN quality REAL")


@migrations()
def m005_scan_settings(db: Database) -> None:
    # The detection settings each photo was scanned with, so that a scan with
    # another --det-size or --det-threshold finds its faces again instead of
    # calling it unchanged. Rows from before this migration were scanned with
    # the defaults of the time (640 px, 0.6) in all but rare cases; they are
    # recorded as such, so upgrading does not re-detect a whole library.
    db.execute("ALTER TABLE photo_scans ADD COLUMN det_size INTEGER")
    db.execute("ALTER TABLE photo_scans ADD COLUMN det_threshold REAL")
    db.execute("UPDATE photo_scans SET det_size = 640, det_threshold = 0.6")


@migrations()
def m006_review_actions(db: Database) -> None:
    # Every correction (name, merge, remove, ignore, a suggestion's answer), from
    # the CLI or the review page, with what it changed: `undo` restores the rows
    # in `undo` and marks the action undone. AUTOINCREMENT: ids only grow, so
    # "the last action" is the largest id that is not undone.
    db.execute(
        """
        CREATE TABLE actions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            summary TEXT NOT NULL,
            undo TEXT,
            created_at TEXT NOT NULL,
            undone_at TEXT
        )
        """
    )


@migrations()
def m007_cannot_links(db: Database) -> None:
    # "These two are not the same person", answered by the user about two people or groups:
    # grouping never puts them together again and suggestions never ask again. Stored with
    # person_a < person_b; a link goes when either person goes.
    db.execute(
        """
        CREATE TABLE cannot_links (
            person_a INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
            person_b INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            PRIMARY KEY (person_a, person_b),
            CHECK (person_a < person_b)
        )
        """
    )
    db.execute("CREATE INDEX cannot_links_b ON cannot_links (person_b)")
    # Faces a user marked "not a person" (a cartoon, a statue, a poster) carry assigned =
    # 'notperson' and no person; grouping leaves them out. Found by this index.
    db.execute("CREATE INDEX faces_assigned ON faces (assigned)")


@migrations()
def m008_photo_queries(db: Database) -> None:
    # `facecluster photos` and `export --links` ask "which photos hold this person?": with
    # (person_id, photo_id) in one index the answer is read from the index alone, without a
    # visit to each face row (benchmarks/photos_query.py, 100,000 faces).
    db.execute("CREATE INDEX IF NOT EXISTS faces_person_photo ON faces (person_id, photo_id)")


@migrations()
def m009_media_frames(db: Database) -> None:
    # RAW files, videos, Live and Motion Photos (facecluster/sources/).
    # photos.kind: what the file is (photo, motion, raw, video); NULL for rows from
    # before, which were all photos. faces.frame_ms: a video face's time in the video
    # (NULL for stills): "a person once per photo" becomes "once per frame".
    db.execute("ALTER TABLE photos ADD COLUMN kind TEXT")
    db.execute("ALTER TABLE faces ADD COLUMN frame_ms INTEGER")
    # Files that are part of another file's shot and are not scanned themselves: the RAW
    # of a RAW+JPEG pair, the video of a Live Photo. Derived from names at every scan.
    # photo_id is not a foreign key on purpose: these rows are rebuilt by each scan and
    # must never stop a photo's removal.
    db["companions"].create(
        {"path": str, "photo_id": int, "kind": str, "size": int, "mtime_ns": int},
        pk="path",
        not_null={"photo_id", "kind"},
    )
    db["companions"].create_index(["photo_id"])


@migrations()
def m010_embeddings(db: Database) -> None:
    # Vectors per (face, embedder), so that another embedder can describe the same faces
    # (`scan --embedder`) without new face ids: people, names, answers and history stay. Every face's
    # scan vector is copied in under its pack's name (a pack's own embedder bears the pack's name).
    # faces.embedding stays as the scan wrote it (docs/schema.md says why); the triggers keep the two
    # in step for every writer of face rows, and drop a face's vectors with the face even where foreign
    # keys are off (a face id may be used again once the largest is deleted).
    db.execute(
        """
        CREATE TABLE embeddings (
            face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
            embedder TEXT NOT NULL,
            dim INTEGER NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (face_id, embedder)
        )
        """
    )
    db.execute(
        "INSERT INTO embeddings (face_id, embedder, dim, vector) SELECT id, model, length(embedding) / 4, embedding FROM faces"
    )
    db.execute(
        """
        CREATE TRIGGER faces_scan_vector AFTER INSERT ON faces BEGIN
            INSERT OR REPLACE INTO embeddings (face_id, embedder, dim, vector)
            VALUES (NEW.id, NEW.model, length(NEW.embedding) / 4, NEW.embedding);
        END
        """
    )
    db.execute(
        """
        CREATE TRIGGER faces_drop_vectors AFTER DELETE ON faces BEGIN
            DELETE FROM embeddings WHERE face_id = OLD.id;
        END
        """
    )
    # The embedder whose vectors `group`, suggestions and `identify` use for this pack's faces; NULL:
    # the pack's own (the embedder of the pack's name).
    db.execute("ALTER TABLE models ADD COLUMN embedder TEXT")
