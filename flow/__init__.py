"""The synthesis, place-and-route and board flow (installed as ``mmfree.flow``)."""
