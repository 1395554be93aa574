"""dreamvid: DeepDream videos and infinite-zoom animations."""

__version__ = "0.1.0"
