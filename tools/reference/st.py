"""Minimal safetensors reader/writer (no `safetensors` package needed).

Format: u64 little-endian header length N, N bytes of UTF-8 JSON
{"__metadata__": {...}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}
padded with spaces so that 8 + N is a multiple of 8, then the raw little-endian tensor
bytes; offsets are relative to the first byte after the header.
"""

import json
import struct

import numpy as np
import torch

# safetensors dtype tag -> (torch dtype, bytes per element)
_DTYPES = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
}
_TAG = {dt: tag for tag, (dt, _) in _DTYPES.items()}


def tensor_bytes(t: torch.Tensor) -> bytes:
    """Raw little-endian bytes of a tensor (row-major)."""
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    arr = t.numpy()
    return arr.astype(arr.dtype.newbyteorder("<")).tobytes()


def dumps(tensors, metadata=None) -> bytes:
    """Serialise an ordered mapping name -> tensor. Tensors are laid out in the given order."""
    header = {"__metadata__": dict(metadata or {"format": "pt"})}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        if t.dtype not in _TAG:
            raise ValueError(f"safetensors: unsupported dtype {t.dtype} for tensor '{name}'")
        b = tensor_bytes(t)
        header[name] = {
            "dtype": _TAG[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(b)],
        }
        blobs.append(b)
        offset += len(b)
    js = json.dumps(header, separators=(",", ":")).encode("utf-8")
    pad = (8 - (8 + len(js)) % 8) % 8
    js += b" " * pad
    return struct.pack("<Q", len(js)) + js + b"".join(blobs)


def save(path, tensors, metadata=None) -> int:
    """Write a safetensors file; returns its size in bytes."""
    data = dumps(tensors, metadata)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def loads(data: bytes):
    """Parse safetensors bytes -> (dict name -> tensor in file order, metadata dict)."""
    if len(data) < 8:
        raise ValueError("safetensors: file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"safetensors: header length {n} exceeds file size {len(data)}")
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    body = memoryview(data)[8 + n :]
    metadata = header.pop("__metadata__", {})
    out = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        dt, size = _DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = info["shape"]
        count = int(np.prod(shape)) if shape else 1
        if end - begin != count * size or end > len(body):
            raise ValueError(f"safetensors: bad data_offsets for '{name}'")
        raw = bytes(body[begin:end])
        if dt == torch.bfloat16:
            t = torch.from_numpy(np.frombuffer(raw, dtype="<i2").copy()).view(torch.bfloat16)
        else:
            np_dt = torch.empty(0, dtype=dt).numpy().dtype.newbyteorder("<")
            t = torch.from_numpy(np.frombuffer(raw, dtype=np_dt).astype(np_dt.newbyteorder("=")))
        out[name] = t.reshape(shape)
    return out, metadata


def load(path):
    """Read a safetensors file -> dict name -> tensor (file order)."""
    with open(path, "rb") as f:
        tensors, _ = loads(f.read())
    return tensors


def load_dir(model_dir):
    """Load every tensor of a Hugging Face style directory: single file or sharded + index."""
    import os

    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(single):
        return load(single)
    with open(os.path.join(model_dir, "model.safetensors.index.json")) as f:
        index = json.load(f)
    out = {}
    for shard in sorted(set(index["weight_map"].values())):
        for name, t in load(os.path.join(model_dir, shard)).items():
            if index["weight_map"].get(name) != shard:
                raise ValueError(f"tensor '{name}' found in {shard} but index maps it elsewhere")
            out[name] = t
    missing = set(index["weight_map"]) - set(out)
    if missing:
        raise ValueError(f"index names tensors missing from shards: {sorted(missing)}")
    return out
