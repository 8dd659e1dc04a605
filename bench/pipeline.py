"""Pipeline benchmark: encode/decode throughput as a ratio to the codec alone, and peak RSS.

    python -m bench.pipeline [--quick] [--json]

For each codec at 3-of-10 and 10-of-30:
- codec alone: ``codec.encode`` over the same segments in memory, and ``codec.decode`` from the
  last k blocks (parity-heavy: real decoding work), measured twice: on one thread, and on as many
  threads as the pipeline uses (``pipeline.default_threads()``);
- pipeline: encrypt + code + hash every block + build roots (encode), and fetch + verify
  every block + decode + decrypt from the last k shares (decode), same thread count;
- ratio = pipeline / codec alone at the same parallelism, both measured here in this run
  (target >= 0.8); the one-thread codec figure is printed beside it for reference.
AEAD alone (format v2 vs v1): one core encrypting the same bytes in messages with the STREAM
construction over OpenSSL's AES-256-GCM and ChaCha20-Poly1305 (64 KiB ciphertext messages, the
v2 default) and with libsodium's secretstream (1 MiB messages, v1), as ratios to secretstream; and
the zfec 3-of-10 pipeline written as v1 beside the v2 rows above.
Peak RSS: a child process encodes S bytes to share files and decodes them back, for a small
and a 8x larger S; the peaks should match (streaming), target < 300 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from erasure import decoding, envelope, localfs, merkle, pipeline, stream
from erasure.codec import available_codecs, get_codec
from erasure.manifest import Manifest

MiB = 1 << 20
POOL = os.urandom(16 * MiB)


def stream_bytes(size: int, chunk: int = MiB) -> Iterator[bytes]:
    view = memoryview(POOL)
    done = 0
    while done < size:
        n = min(chunk, size - done)
        start = done % (len(POOL) - chunk)
        yield bytes(view[start : start + n])
        done += n


class NullSink:
    def write(self, data: bytes) -> int:
        return len(data)


class ListSink:
    """Keeps blocks as they come (no growing buffer to reallocate, unlike BytesIO)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(data)
        return len(data)


def codec_alone(codec_name: str, k: int, n: int, size: int, block: int, *, threads: int) -> tuple[float, float]:
    """Bytes/s of ``codec.encode`` and ``codec.decode`` (from the last k blocks: parity-heavy) over the
    same segments in memory, spread over ``threads`` workers (1 = the bare codec on one core)."""
    codec = get_codec(codec_name, k, n)
    segment_size = k * block
    segments = list(stream_bytes(min(size, 64 * MiB), segment_size))
    rounds = max(1, size // (len(segments) * segment_size))
    coded = [codec.encode(seg) for seg in segments]

    def enc_one(seg: bytes) -> None:
        codec.encode(seg)

    def dec_one(i: int) -> None:
        codec.decode({j: coded[i][j] for j in range(n - k, n)}, len(segments[i]))

    with ThreadPoolExecutor(threads) as pool:
        t = time.perf_counter()
        for _ in range(rounds):
            list(pool.map(enc_one, segments))
        enc = rounds * len(segments) * segment_size / (time.perf_counter() - t)
        t = time.perf_counter()
        for _ in range(rounds):
            list(pool.map(dec_one, range(len(segments))))
        dec = rounds * len(segments) * segment_size / (time.perf_counter() - t)
    return enc, dec


def aead_alone(size: int) -> dict[str, float]:
    """Bytes/s of each AEAD encrypting ``size`` bytes on one core, messages as each format cuts them."""
    key = envelope.new_data_key()
    rates: dict[str, float] = {}
    for scheme in stream.SCHEMES:
        t = time.perf_counter()
        _, messages = stream.encrypt_stream(key, stream_bytes(size), scheme=scheme)
        for _ in messages:
            pass
        rates[scheme] = size / (time.perf_counter() - t)
    t = time.perf_counter()
    _, messages = envelope.encrypt_stream(key, stream_bytes(size))
    for _ in messages:
        pass
    rates[envelope.SCHEME] = size / (time.perf_counter() - t)
    return rates


def pipeline_run(codec_name: str, k: int, n: int, size: int, block: int, version: int = 2) -> tuple[float, float]:
    message_size = envelope.MESSAGE_SIZE if version == 1 else stream.MESSAGE_SIZE  # each format's default
    layout = pipeline.Layout(codec=codec_name, k=k, n=n, block_size=block, version=version, message_size=message_size)
    keep = set(range(n - k, n))
    kept = {i: ListSink() for i in keep}
    sinks: list[pipeline.ShareSink] = [kept[i] if i in keep else NullSink() for i in range(n)]
    key = envelope.new_data_key()
    t = time.perf_counter()
    result = pipeline.encode(stream_bytes(size), sinks, key=key, layout=layout)
    enc = size / (time.perf_counter() - t)
    man = result.manifest
    sources: dict[int, pipeline.ShareSource] = {
        i: decoding.MemoryShareSource(b"".join(kept[i].parts), block, man.leaf_size, result.block_roots[i])
        for i in keep
    }
    t = time.perf_counter()
    total = sum(len(c) for c in decoding.decode(man, key, sources))
    dec = size / (time.perf_counter() - t)
    assert total == size
    return enc, dec


def _vm_hwm_mib() -> float:
    """Peak RSS of this process image (VmHWM; ru_maxrss would include the parent's peak
    from before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(size: int) -> None:
    """Encode ``size`` bytes to files and decode them; print peak RSS (MiB) after each phase."""
    layout = pipeline.Layout(codec="zfec", k=3, n=10)
    key = envelope.new_data_key()
    with tempfile.TemporaryDirectory(prefix="datasov-bench-") as tmp:
        d = Path(tmp)
        with localfs.share_writers(d, layout.n) as sinks:
            man: Manifest = pipeline.encode(stream_bytes(size), sinks, key=key, layout=layout).manifest
        enc_peak = _vm_hwm_mib()
        for i in range(layout.k):  # decode from parity shares only
            localfs.share_path(d, i).unlink()
        total = sum(len(c) for c in decoding.decode(man, key, localfs.sources(d, man)))
        assert total == size
        dec_peak = _vm_hwm_mib()
    print(json.dumps({"encode_peak_mib": round(enc_peak, 1), "decode_peak_mib": round(dec_peak, 1)}))


def peak_rss(size: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.pipeline", "--rss-child", str(size)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64 MiB runs, 32/256 MiB RSS (about a minute)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return

    pipeline.tune_allocator()  # the same allocator settings for the codec alone and the pipeline
    size = 64 * MiB if args.quick else 1024 * MiB
    block = pipeline.DEFAULT_BLOCK_SIZE
    threads = pipeline.default_threads()
    results: dict[str, object] = {
        "size_mib": size // MiB,
        "block_size": block,
        "merkle_backend": merkle.BACKEND,
        "cores": os.cpu_count(),
        "threads": threads,
    }
    print(
        f"pipeline benchmark: {size // MiB} MiB, block {block // 1024} KiB, merkle={merkle.BACKEND}, "
        f"{threads} threads (codec alone measured at 1 and {threads})"
    )
    for codec_name in available_codecs():
        for k, n in ((3, 10), (10, 30)):
            c1_enc, c1_dec = codec_alone(codec_name, k, n, size, block, threads=1)
            c_enc, c_dec = codec_alone(codec_name, k, n, size, block, threads=threads)
            p_enc, p_dec = pipeline_run(codec_name, k, n, size, block)
            tag = f"{codec_name}_{k}_{n}"
            results.update(
                {
                    f"codec_1thread_encode_mbps_{tag}": round(c1_enc / 1e6, 1),
                    f"codec_1thread_decode_mbps_{tag}": round(c1_dec / 1e6, 1),
                    f"codec_encode_mbps_{tag}": round(c_enc / 1e6, 1),
                    f"pipeline_encode_mbps_{tag}": round(p_enc / 1e6, 1),
                    f"encode_ratio_{tag}": round(p_enc / c_enc, 3),
                    f"codec_decode_mbps_{tag}": round(c_dec / 1e6, 1),
                    f"pipeline_decode_mbps_{tag}": round(p_dec / 1e6, 1),
                    f"decode_ratio_{tag}": round(p_dec / c_dec, 3),
                }
            )
            print(
                f"  {codec_name:4} {k:2}-of-{n:<2}  encode {p_enc / 1e6:7.1f} MB/s = {p_enc / c_enc:5.2f}x codec "
                f"({c_enc / 1e6:.1f}; 1 thread {c1_enc / 1e6:.1f})  decode {p_dec / 1e6:7.1f} MB/s = "
                f"{p_dec / c_dec:5.2f}x codec ({c_dec / 1e6:.1f}; 1 thread {c1_dec / 1e6:.1f})"
            )
    rates = aead_alone(size)
    base = rates[envelope.SCHEME]
    for scheme, rate in rates.items():
        results[f"aead_mbps_{scheme}"] = round(rate / 1e6, 1)
        results[f"aead_ratio_to_secretstream_{scheme}"] = round(rate / base, 2)
        print(f"  AEAD alone, 1 core  {scheme:34} {rate / 1e6:7.1f} MB/s = {rate / base:5.2f}x secretstream")
    v1_enc, v1_dec = pipeline_run("zfec", 3, 10, size, block, version=1)
    v2_enc = float(results.get("pipeline_encode_mbps_zfec_3_10", 0.0)) * 1e6  # type: ignore[arg-type]
    v2_dec = float(results.get("pipeline_decode_mbps_zfec_3_10", 0.0)) * 1e6  # type: ignore[arg-type]
    results.update(
        {
            "pipeline_v1_encode_mbps_zfec_3_10": round(v1_enc / 1e6, 1),
            "pipeline_v1_decode_mbps_zfec_3_10": round(v1_dec / 1e6, 1),
            "v2_over_v1_encode_zfec_3_10": round(v2_enc / v1_enc, 2),
            "v2_over_v1_decode_zfec_3_10": round(v2_dec / v1_dec, 2),
        }
    )
    print(
        f"  zfec 3-of-10 format v1 (secretstream): encode {v1_enc / 1e6:7.1f} MB/s, decode {v1_dec / 1e6:7.1f} MB/s; "
        f"v2 is {v2_enc / v1_enc:.2f}x / {v2_dec / v1_dec:.2f}x"
    )
    small, large = (32 * MiB, 256 * MiB) if args.quick else (256 * MiB, 2048 * MiB)
    rss_small, rss_large = peak_rss(small), peak_rss(large)
    results.update(
        {
            "rss_small_input_mib": small // MiB,
            "rss_large_input_mib": large // MiB,
            "rss_small_peak_mib": max(rss_small.values()),
            "rss_large_peak_mib": max(rss_large.values()),
            "rss_growth_ratio": round(max(rss_large.values()) / max(rss_small.values()), 3),
        }
    )
    print(f"  peak RSS  {small // MiB} MiB input: {rss_small}   {large // MiB} MiB input: {rss_large}")
    if args.json:
        print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
