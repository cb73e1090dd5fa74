"""The tool's own exception types.

Every error a user can meet is one of these, with a message written for that
user. The CLI turns `UsageProblem` into a usage error (exit 2) and every other
`FaceclusterError` into a one-line message with exit status 1.
"""


class FaceclusterError(Exception):
    """Base class: the message is shown to the user as it is."""


class UsageProblem(FaceclusterError):
    """The command line itself is wrong (bad option value, missing folder)."""


class StoreError(FaceclusterError):
    """The database cannot be opened, is locked, or was made by a newer version."""


class StoreBusy(StoreError):
    """Another facecluster process holds the database."""


class ModelError(FaceclusterError):
    """A model pack is unknown, missing, or its files fail verification."""


class DecodeError(FaceclusterError):
    """A file is not a photo we can read. Recorded per file; never aborts a scan."""


def short_reason(e: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none), at most 200 characters:
    what a one-line error message quotes of a library's own error.

    Example:
        short_reason(OSError("disk full\nmore detail"))  # 'disk full'
    """
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


class PeopleError(FaceclusterError):
    """An unknown person, an empty name, nothing to group, ..."""
