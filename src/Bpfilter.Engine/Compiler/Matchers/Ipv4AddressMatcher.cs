using System.Buffers.Binary;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler.Matchers;

/// <summary>
/// Source and destination prefixes. The address registers hold the wire bytes read little-endian, so the
/// constants are byte-swapped, and compares are JMP32: a 64-bit compare would sign-extend the immediate.
/// </summary>
internal static class Ipv4AddressMatcher
{
    public static void Emit(Assembler asm, Register field, IpPrefix prefix, Label noMatch)
    {
        if (prefix.Length == 0) return;
        uint network = BinaryPrimitives.ReverseEndianness((uint)prefix.Address);
        if (prefix.Length == 32)
        {
            FieldCompare.JumpIfNotEqual(asm, field, network, noMatch);
            return;
        }
        asm.Mov32(Registers.Scratch, field);
        asm.Alu32(AluOp.And, Registers.Scratch, unchecked((int)BinaryPrimitives.ReverseEndianness((uint)prefix.Mask)));
        asm.Jump32(JumpOp.Jne, Registers.Scratch, network, noMatch);
    }
}
