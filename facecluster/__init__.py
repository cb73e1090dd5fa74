"""facecluster: find the people in a photo library, locally."""

__version__ = "0.1.0"
