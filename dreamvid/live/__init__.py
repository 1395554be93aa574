"""Dreaming live: a camera or a stream dreamed as it happens, out to windows, streams and files."""
