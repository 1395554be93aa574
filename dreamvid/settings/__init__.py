"""Every setting once: its default and why, its bounds, presets and schedules."""
