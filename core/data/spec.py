"""What a dataset's examples look like.
"""

from __future__ import annotations

IMAGE_SIDE = 28


NUM_PIXELS = IMAGE_SIDE * IMAGE_SIDE


NUM_CLASSES = 10
