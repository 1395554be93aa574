"""The web page (`dreamvid ui`): Gradio over the Python API; what it does without Gradio in `work`."""
