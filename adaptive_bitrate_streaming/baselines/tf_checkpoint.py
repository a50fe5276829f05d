"""Read TensorFlow 1 checkpoints (`tf.train.Saver` tensor bundles) without TensorFlow.

A bundle is `<prefix>.index`, a LevelDB-format table mapping tensor names to `BundleEntryProto`
records (dtype, shape, shard, offset, size), and `<prefix>.data-<shard>-of-<shards>` files holding the raw
little-endian tensor bytes. The few protobuf and table fields needed are decoded here by hand.
"""
import struct
from pathlib import Path

import numpy as np

from common.errors import InputError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5  # compression type byte + crc32
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 10: np.bool_}


class _CorruptBundle(Exception):
    pass


def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if position >= len(buffer):
            raise _CorruptBundle("varint runs past the end of the data")
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _protobuf_fields(message: bytes):
    """Yield (field number, value) pairs; value is an int (varint/fixed) or bytes (length-delimited)."""
    position = 0
    while position < len(message):
        tag, position = _varint(message, position)
        field, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, position = _varint(message, position)
        elif wire_type == 1:
            value, position = struct.unpack_from("<Q", message, position)[0], position + 8
        elif wire_type == 2:
            length, position = _varint(message, position)
            value, position = message[position : position + length], position + length
        elif wire_type == 5:
            value, position = struct.unpack_from("<I", message, position)[0], position + 4
        else:
            raise _CorruptBundle(f"unsupported protobuf wire type {wire_type}")
        yield field, value


def _block_entries(table: bytes, offset: int, size: int):
    """Yield (key, value) pairs of one table block (keys are prefix-compressed against the previous key)."""
    if offset + size + BLOCK_TRAILER_SIZE > len(table):
        raise _CorruptBundle("block runs past the end of the index file")
    if table[offset + size] != 0:
        raise _CorruptBundle("compressed blocks are not supported")
    block = table[offset : offset + size]
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * num_restarts
    position, key = 0, b""
    while position < end:
        shared, position = _varint(block, position)
        non_shared, position = _varint(block, position)
        value_length, position = _varint(block, position)
        key = key[:shared] + block[position : position + non_shared]
        position += non_shared
        yield key, block[position : position + value_length]
        position += value_length


def _parse_entry(value: bytes) -> dict:
    entry = {"dtype": None, "shape": [], "shard": 0, "offset": 0, "size": 0}
    for field, item in _protobuf_fields(value):
        if field == 1:
            entry["dtype"] = item
        elif field == 2:
            for shape_field, dim in _protobuf_fields(item):
                if shape_field == 2:
                    entry["shape"].append(next((v for f, v in _protobuf_fields(dim) if f == 1), 0))
        elif field == 3:
            entry["shard"] = item
        elif field == 4:
            entry["offset"] = item
        elif field == 5:
            entry["size"] = item
    return entry


def read_index(prefix: Path) -> tuple[int, dict[str, dict]]:
    """Number of data shards and the entry record of every tensor in the bundle."""
    index_path = Path(f"{prefix}.index")
    table = index_path.read_bytes()
    if len(table) < FOOTER_SIZE or struct.unpack_from("<Q", table, len(table) - 8)[0] != TABLE_MAGIC:
        raise _CorruptBundle(f"{index_path} is not a TensorFlow checkpoint index")
    footer = table[-FOOTER_SIZE:]
    _, position = _varint(footer, 0)  # metaindex block offset (unused)
    _, position = _varint(footer, position)
    index_offset, position = _varint(footer, position)
    index_size, _ = _varint(footer, position)
    num_shards, entries = 1, {}
    for _, handle in _block_entries(table, index_offset, index_size):
        block_offset, position = _varint(handle, 0)
        block_size, _ = _varint(handle, position)
        for key, value in _block_entries(table, block_offset, block_size):
            if key == b"":  # the bundle header
                num_shards = next((v for f, v in _protobuf_fields(value) if f == 1), 1)
            else:
                entries[key.decode()] = _parse_entry(value)
    return num_shards, entries


def load_checkpoint(prefix: str | Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Tensors of a TF1 checkpoint by variable name (all of them, or those in `names`)."""
    prefix = Path(prefix)
    fix = "run download_data.py to fetch it again"
    if not Path(f"{prefix}.index").is_file():
        raise InputError(f"checkpoint {prefix}.index is missing; {fix}")
    try:
        num_shards, entries = read_index(prefix)
    except (_CorruptBundle, struct.error, IndexError) as error:
        raise InputError(f"checkpoint {prefix}.index is unreadable ({error}); {fix}") from None
    names = list(entries) if names is None else names
    tensors = {}
    for name in names:
        if name not in entries:
            raise InputError(f"checkpoint {prefix} has no variable '{name}'; is it a Pensieve actor checkpoint?")
        entry = entries[name]
        data_path = Path(f"{prefix}.data-{entry['shard']:05d}-of-{num_shards:05d}")
        if not data_path.is_file():
            raise InputError(f"checkpoint data file {data_path} is missing; {fix}")
        dtype = np.dtype(DTYPES.get(entry["dtype"], np.uint8))
        with open(data_path, "rb") as f:
            f.seek(entry["offset"])
            raw = f.read(entry["size"])
        count = int(np.prod(entry["shape"], dtype=np.int64))
        if len(raw) != entry["size"] or entry["size"] != count * dtype.itemsize:
            raise InputError(f"checkpoint data file {data_path} is truncated (variable '{name}'); {fix}")
        tensors[name] = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(entry["shape"]).copy()
    return tensors
