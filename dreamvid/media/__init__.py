"""What comes in and goes out: sources, sinks, sound, masks, 16-bit frames, contact sheets."""
