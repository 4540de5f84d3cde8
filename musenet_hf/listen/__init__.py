"""Hear and see generated music: audio rendering (``audio``), piano rolls and the Gradio playground (``app``)."""
