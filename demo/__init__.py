"""The main job of `make demo`: the whole pipeline on the local stack, with its results shown."""
