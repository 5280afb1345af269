using System.Buffers.Binary;

namespace Bpfilter.Engine.Ebpf;

/// <summary>
/// One 8-byte eBPF instruction as the kernel reads it: opcode, dst (low nibble) and src (high nibble)
/// registers, a signed 16-bit offset and a signed 32-bit immediate. A 64-bit immediate load spans two.
/// </summary>
public readonly record struct Instruction(byte Opcode, byte Dst, byte Src, short Offset, int Immediate)
{
    public const int Size = 8;

    public OpClass Class => (OpClass)(Opcode & 0x07);

    /// <summary>True for the first slot of a 64-bit immediate load (opcode 0x18).</summary>
    public bool IsLoadImm64 => Opcode == 0x18;

    public void WriteTo(Span<byte> destination)
    {
        destination[0] = Opcode;
        destination[1] = (byte)((Src << 4) | (Dst & 0x0f));
        BinaryPrimitives.WriteInt16LittleEndian(destination[2..], Offset);
        BinaryPrimitives.WriteInt32LittleEndian(destination[4..], Immediate);
    }

    public static Instruction ReadFrom(ReadOnlySpan<byte> source) => new(
        source[0], (byte)(source[1] & 0x0f), (byte)(source[1] >> 4),
        BinaryPrimitives.ReadInt16LittleEndian(source[2..]),
        BinaryPrimitives.ReadInt32LittleEndian(source[4..]));

    public static byte[] Encode(IReadOnlyList<Instruction> instructions)
    {
        var bytes = new byte[instructions.Count * Size];
        for (int i = 0; i < instructions.Count; i++) instructions[i].WriteTo(bytes.AsSpan(i * Size));
        return bytes;
    }
}
