"""The dream: the gradient-ascent loop, objectives, networks and the frameworks under them."""
