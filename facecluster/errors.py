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
