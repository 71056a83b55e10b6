"""Control plane over ZeroMQ (see docs/control-protocol.md).

``server.ControlServer`` (BS, ROUTER) and ``client.ControlClient`` (UE, DEALER) each run one event loop via
``poll()``; ``protocol`` holds the wire messages; ``security`` the CURVE keys and allow-list.
"""
