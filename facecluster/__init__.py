"""facecluster: find the people in a photo library, locally."""

import os

# Privacy: the onnxruntime Linux wheel ships Microsoft's 1DS telemetry. Importing
# it writes a device id under ~/.cache/Microsoft and queues an event for upload.
# Only this variable, set before onnxruntime is first imported, stops it
# (ORT_TELEMETRY_DISABLED and disable_telemetry_events() do not). Every process
# imports this package first, scan's worker processes included (they inherit the
# environment and unpickle facecluster functions), so setting it here covers all.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

__version__ = "0.1.0"
