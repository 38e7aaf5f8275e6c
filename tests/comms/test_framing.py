"""Framing: pure parsers (with hypothesis) and SocketStream limits over real sockets."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.comms.framing import (
    ConnectionClosed,
    FrameError,
    FrameTimeout,
    SocketStream,
    build_hdlc,
    hdlc_fcs,
    parse_hdlc,
    parse_wrapper,
    split_frame,
    wrapper_frame,
)


@pytest.fixture
def pair():
    """A connected TCP pair on 127.0.0.1: (meter side, HES side)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    server.close()
    yield client, accepted
    client.close()
    accepted.close()


def test_known_snrm_frame_checksum():
    frame = build_hdlc(1, 1, 16, 1, 0x93)
    assert frame.hex() == "7ea0070321930f017e"
    assert hdlc_fcs(frame[1:-3]) == 0x0F01
    assert parse_hdlc(frame).control == 0x93


def test_wrapper_and_hdlc_round_trip():
    assert parse_wrapper(wrapper_frame(16, 1, b"\x60\x00")).apdu == b"\x60\x00"
    frame = build_hdlc(0x10, 1, (1 << 7) | 17, 2, 0x10, b"\xe6\xe7\x00hello", segmented=True)
    parsed = parse_hdlc(frame)
    assert (parsed.destination, parsed.source, parsed.info, parsed.segmented) == (
        0x10, (1 << 7) | 17, b"\xe6\xe7\x00hello", True)
    with pytest.raises(FrameError):
        parse_hdlc(frame[:-3] + bytes([frame[-3] ^ 1]) + frame[-2:])


def test_stream_reads_back_to_back_frames_and_keeps_leftover(pair):
    meter, hes = pair
    first, second = wrapper_frame(1, 1, b"\x01" * 10), wrapper_frame(1, 1, b"\x02" * 3)
    meter.sendall(first + second + b"\x00\x01")
    stream = SocketStream(hes, "wrapper", timeout=2)
    assert stream.recv_frame() == first
    assert stream.recv_frame() == second
    assert stream.take_buffer() == b"\x00\x01"


def test_garbage_version_and_oversize_raise_frame_error(pair):
    meter, hes = pair
    meter.sendall(b"\x00\x02\x00\x01\x00\x01\x00\x01x")
    with pytest.raises(FrameError, match="version"):
        SocketStream(hes, "wrapper", timeout=2).recv_frame()
    with pytest.raises(FrameError, match="exceeds"):
        list(split_frame(b"\x00\x01\x00\x01\x00\x01\xff\xff", "wrapper", max_frame=1024))
    with pytest.raises(FrameError):
        split_frame(b"GET / HTTP/1.1\r\n", "hdlc")


def test_truncated_frame_then_eof_is_connection_closed(pair):
    meter, hes = pair
    meter.sendall(wrapper_frame(1, 1, b"\x01" * 20)[:12])
    meter.close()
    with pytest.raises(ConnectionClosed):
        SocketStream(hes, "wrapper", timeout=2).recv_frame()


def test_silence_times_out_within_read_timeout(pair):
    _, hes = pair
    started = time.monotonic()
    with pytest.raises(FrameTimeout):
        SocketStream(hes, "wrapper", timeout=0.5).recv_frame()
    assert time.monotonic() - started < 1.0


def test_slowloris_hits_the_frame_deadline(pair):
    meter, hes = pair
    frame = wrapper_frame(1, 1, b"\x01" * 40)
    stop = threading.Event()

    def trickle():
        for byte in frame:
            if stop.wait(0.1):
                return
            try:
                meter.send(bytes([byte]))
            except OSError:
                return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    started = time.monotonic()
    with pytest.raises(FrameTimeout, match="deadline|inside"):
        SocketStream(hes, "wrapper", timeout=0.5, frame_deadline=1.0).recv_frame()
    elapsed = time.monotonic() - started
    stop.set()
    assert 0.9 <= elapsed < 1.6


def test_recv_initial_reads_a_bare_line(pair):
    meter, hes = pair
    meter.sendall(b"METER1234\x01\x02\r\n" + wrapper_frame(1, 1, b"\x0f"))
    stream = SocketStream(hes, "wrapper", timeout=2)
    assert stream.recv_initial() == b"METER1234\x01\x02\r\n"
    assert stream.recv_frame() == wrapper_frame(1, 1, b"\x0f")


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["wrapper", "hdlc"]))
def test_split_frame_only_raises_frame_error(data, interface):
    try:
        frame, rest = split_frame(data, interface)
    except FrameError:
        return
    if frame is not None:
        assert data.endswith(frame + rest)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_parsers_only_raise_frame_error(data):
    for parser in (parse_hdlc, parse_wrapper):
        try:
            parser(data)
        except FrameError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=120), st.booleans())
def test_built_hdlc_frames_parse_back(info, segmented):
    frame = build_hdlc(1, 1, 0x91, 2, 0x10, info, segmented)
    parsed = parse_hdlc(frame)
    assert parsed.info == info and (parsed.segmented or not info) == (segmented or not info)
