"""What moves between frames: optical flow, the carry, colours, zoom transforms."""
