# Edits a ferrofs superblock copy in place and re-seals its checksum, to
# make images that are valid apart from one chosen field.
# usage: ferrofs_image.py DEVICE set-u64|set-u32 FIELD_OFFSET VALUE [COPY...]
import struct
import sys

SB_OFFSETS = [64 * 1024, 128 * 1024]
SB_SIZE = 4096


def crc32c(data, crc=0xFFFFFFFF):
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


dev, op, field, value = sys.argv[1], sys.argv[2], int(sys.argv[3], 0), int(sys.argv[4], 0)
copies = [int(c) for c in sys.argv[5:]] or [0, 1]
with open(dev, "r+b") as f:
    for c in copies:
        f.seek(SB_OFFSETS[c])
        sb = bytearray(f.read(SB_SIZE))
        fmt = "<Q" if op == "set-u64" else "<I"
        struct.pack_into(fmt, sb, field, value)
        struct.pack_into("<I", sb, 0, crc32c(bytes(sb[4:])))
        f.seek(SB_OFFSETS[c])
        f.write(sb)
