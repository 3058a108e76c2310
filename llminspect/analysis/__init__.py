"""Inspecting a model: checked inputs in, plain tested data out (tokens, traces, walks, ...)."""
