"""The ground every layer stands on: errors, frames, files, ffmpeg, progress reports."""
