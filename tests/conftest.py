"""Shared fixtures: the embedded models, loaded once per test session, always offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network

import pytest  # noqa: E402

import llminspect as li  # noqa: E402

_LOADED: dict = {}


def embedded(name: str):
    """An embedded model as an Inspector, loaded on first use and shared afterwards."""
    if name not in _LOADED:
        _LOADED[name] = li.load(name, device="cpu")
    return _LOADED[name]


@pytest.fixture(scope="session")
def encoder():
    return embedded("encoder")


@pytest.fixture(scope="session")
def decoder():
    return embedded("decoder")


@pytest.fixture(scope="session")
def whisper():
    return embedded("encoder-decoder")


@pytest.fixture(scope="session")
def toy():
    return embedded("toy-seq2seq")
