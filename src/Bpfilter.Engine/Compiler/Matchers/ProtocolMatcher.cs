using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler.Matchers;

/// <summary>The IPv4 protocol byte.</summary>
internal static class ProtocolMatcher
{
    public static void Emit(Assembler asm, IpProtocol protocol, Label noMatch) =>
        FieldCompare.JumpIfNotEqual(asm, Registers.Protocol, protocol.Number, noMatch);
}
