using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler;

/// <summary>What differs between hooks: the program type, how to find the packet, where L3 starts, how to say a verdict.</summary>
internal abstract class HookFlavour
{
    public abstract ProgramType ProgramType { get; }

    /// <summary>Offset of the network header from the packet start (14 at L2 hooks, 0 at L3 hooks).</summary>
    public abstract int NetworkOffset { get; }

    /// <summary>Emits code that leaves the packet start in r7 and its end in r8, from the context in r1.</summary>
    public abstract void EmitPacketPointers(Assembler asm);

    public abstract int ReturnCode(Verdict verdict);

    public static HookFlavour For(Hook hook) => hook switch
    {
        Hook.Xdp => XdpFlavour.Instance,
        _ => throw new ArgumentOutOfRangeException(nameof(hook), hook, "no code generator for this hook"),
    };
}

/// <summary>XDP: the context is struct xdp_md {u32 data; u32 data_end; ...}; the packet starts at the Ethernet header.</summary>
internal sealed class XdpFlavour : HookFlavour
{
    public static readonly XdpFlavour Instance = new();
    private const int XdpDrop = 1, XdpPass = 2;

    public override ProgramType ProgramType => ProgramType.Xdp;
    public override int NetworkOffset => 14;

    public override void EmitPacketPointers(Assembler asm)
    {
        asm.Load(Size.Word, Registers.PacketStart, Register.R1, 0);
        asm.Load(Size.Word, Registers.PacketEnd, Register.R1, 4);
    }

    public override int ReturnCode(Verdict verdict) => verdict == Verdict.Accept ? XdpPass : XdpDrop;
}
