"""The sandbox: student code runs in a confined child; the parent only ever receives data.

`zygote.Sandbox` is the parent's handle. It forks a fork-server (the zygote) at a clean point,
before any reference code, expected value, hidden case or results path is loaded, and every
worker is forked from that zygote, so no worker's memory holds anything secret.
"""
