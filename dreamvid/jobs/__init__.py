"""The jobs: a video, a zoom, a still, a gallery, each around its frame loop."""
