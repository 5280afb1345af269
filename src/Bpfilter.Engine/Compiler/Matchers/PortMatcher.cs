using System.Buffers.Binary;
using Bpfilter.Engine.Ebpf;

namespace Bpfilter.Engine.Compiler.Matchers;

/// <summary>A TCP or UDP port. The register holds the wire-order u16 (or NoPort, which equals no port).</summary>
internal static class PortMatcher
{
    public static void Emit(Assembler asm, Register field, ushort port, Label noMatch) =>
        FieldCompare.JumpIfNotEqual(asm, field, BinaryPrimitives.ReverseEndianness(port), noMatch);
}
