"""Every setting once: its default and why, its bounds or choices (settings), presets and the
schedules' notation (schedule). (Named config, not settings: `dreamvid.settings` is the API's function.)"""
