"""A clip's frames in order: what a job prepares, the chain, segments, the work folder, threads, Ray."""
