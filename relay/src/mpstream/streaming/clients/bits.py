"""MSB-first bit packing, with the Exp-Golomb codes of H.264 headers (also used for AAC)."""

from __future__ import annotations


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def __len__(self) -> int:
        return len(self.bits)

    def u(self, width: int, value: int) -> None:
        """`value` as an unsigned `width`-bit field."""
        self.bits.extend((value >> (width - 1 - i)) & 1 for i in range(width))

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(2 * code.bit_length() - 1, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def aligned(self) -> bytes:
        """The bits so far, zero-padded to a whole byte."""
        bits = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))

    def trailing(self) -> bytes:
        """H.264 rbsp_trailing_bits: a stop bit, then zeros to the byte boundary."""
        self.bits.append(1)
        return self.aligned()
